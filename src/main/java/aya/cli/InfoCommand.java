package aya.cli;

import aya.config.ModelConfig;
import aya.model.AyaForward;
import aya.weights.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;

/** {@code aya info}: what a checkpoint is, after loading and validating it. */
@Command(name = "info", mixinStandardHelpOptions = true, description = "Summarize a checkpoint: config, parameters, layer schedule, weight and KV-cache bytes.")
public final class InfoCommand implements Callable<Integer> {

    @Mixin
    ModelOptions options;

    @Override
    public Integer call() {
        try (AyaForward model = options.load()) {
            ModelConfig c = model.config();
            StringBuilder schedule = new StringBuilder();
            int globals = 0;
            for (int i = 0; i < c.numLayers(); i++) {
                schedule.append(c.isSliding(i) ? 'S' : 'G');
                if (!c.isSliding(i)) globals++;
            }
            int context = options.context == null ? c.maxPositionEmbeddings() : Math.min(options.context, c.maxPositionEmbeddings());
            System.out.printf("model        %s%n", options.model);
            System.out.printf("architecture %s (%s)%n", ModelConfig.ARCHITECTURE, ModelConfig.MODEL_TYPE);
            System.out.printf("sizes        hidden %d, intermediate %d, layers %d, heads %d, kv heads %d, head_dim %d, vocab %d%n",
                    c.hiddenSize(), c.intermediateSize(), c.numLayers(), c.numHeads(), c.numKvHeads(), c.headDim(), c.vocabSize());
            System.out.printf("attention    sliding window %d with RoPE theta %s; %d global layers (NoPE)%n",
                    c.slidingWindow(), c.ropeTheta(), globals);
            System.out.printf("schedule     %s  (S sliding, G global)%n", schedule);
            System.out.printf("head         %s, logit_scale %s, layer_norm_eps %s%n",
                    model.headTied() ? "tied to embed_tokens" : "lm_head.weight", c.logitScale(), c.layerNormEps());
            System.out.printf("positions    max_position_embeddings %d%n", c.maxPositionEmbeddings());
            System.out.printf("parameters   %,d%n", model.parameterCount());
            Map<String, Long> byType = new TreeMap<>();
            for (Tensor t : checkpointTensors(model)) {
                byType.merge(t.dtype(), t.data().byteSize(), Long::sum);
            }
            System.out.printf("weights      %,d bytes %s%n", model.weightBytes(), byType);
            System.out.printf("kv cache     %,d bytes per token (f32, %d global layers) + %,d bytes fixed for the sliding rings (context %d)%n",
                    model.kvBytesPerToken(), globals, model.slidingKvBytes(context, AyaForward.DEFAULT_MAX_BLOCK), context);
            System.out.printf("backend      %s, %d threads%n", model.kernels().name(), model.threads());
        }
        return 0;
    }

    private static Iterable<Tensor> checkpointTensors(AyaForward model) {
        return model.tensors().values();
    }
}
