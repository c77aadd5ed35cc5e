package aya.weights;

import aya.AyaException;
import aya.kernels.Parallel;
import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.core.util.Separators;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * Writes a checkpoint in Tiny Aya's exact Hugging Face layout (config.json, generation_config.json,
 * model.safetensors.index.json and two shards) filled with random weights, so the engine can be run and
 * benchmarked without the gated weights.
 *
 * <p>Weights are approximately normal with std 0.02 (transformers' initializer_range), LayerNorm weights are 1:
 * with that scale the forward pass stays finite and logits are O(1). Values depend only on the seed, the tensor
 * name and the element index (a counter-based generator), so the output is the same whatever the thread count.
 */
public final class RandomCheckpoint {

    /** Model shape. {@link #TINY_AYA} is the real one; smaller shapes make test checkpoints. */
    public record Shape(int hiddenSize, int intermediateSize, int layers, int heads, int kvHeads, int headDim,
                        int vocabSize) {
        public Shape {
            if (hiddenSize <= 0 || intermediateSize <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || headDim <= 0
                    || vocabSize <= 0) {
                throw new AyaException("model sizes must be positive");
            }
            if (heads % kvHeads != 0) {
                throw new AyaException("--heads (" + heads + ") must be a multiple of --kv-heads (" + kvHeads + ")");
            }
            if (headDim % 2 != 0) {
                throw new AyaException("--head-dim must be even (rotary pairs), got " + headDim);
            }
        }

        public static final Shape TINY_AYA = new Shape(2048, 11008, 36, 16, 4, 128, 262144);

        /** Layers 3, 7, 11, ... are global (full attention); the rest slide over 4096 tokens. */
        public static boolean isGlobalLayer(int layer) {
            return layer % 4 == 3;
        }
    }

    /** Element type of the written weights: safetensors tag, torch name, bytes per element. */
    public enum DType {
        BF16("BF16", "bfloat16", 2), F16("F16", "float16", 2), F32("F32", "float32", 4);

        final String tag;
        final String torchName;
        final int bytes;

        DType(String tag, String torchName, int bytes) {
            this.tag = tag;
            this.torchName = torchName;
            this.bytes = bytes;
        }
    }

    /** A tensor to write: HF name and [out, in] shape (or [n] for norms). */
    public record TensorSpec(String name, long[] shape, boolean isNorm) {
        long elements() {
            return SafetensorsWriter.elementCount(shape);
        }
    }

    static final float WEIGHT_STD = 0.02f;
    static final String SHARD_1 = "model-00001-of-00002.safetensors";
    static final String SHARD_2 = "model-00002-of-00002.safetensors";

    private RandomCheckpoint() {
    }

    /** The tensors of a Cohere2 checkpoint in state-dict order. Tied head: no lm_head.weight. */
    public static List<TensorSpec> tensors(Shape s) {
        List<TensorSpec> list = new ArrayList<>();
        long h = s.hiddenSize();
        long qDim = (long) s.heads() * s.headDim();
        long kvDim = (long) s.kvHeads() * s.headDim();
        long ff = s.intermediateSize();
        list.add(new TensorSpec("model.embed_tokens.weight", new long[]{s.vocabSize(), h}, false));
        for (int i = 0; i < s.layers(); i++) {
            String p = "model.layers." + i + ".";
            list.add(new TensorSpec(p + "input_layernorm.weight", new long[]{h}, true));
            list.add(new TensorSpec(p + "self_attn.q_proj.weight", new long[]{qDim, h}, false));
            list.add(new TensorSpec(p + "self_attn.k_proj.weight", new long[]{kvDim, h}, false));
            list.add(new TensorSpec(p + "self_attn.v_proj.weight", new long[]{kvDim, h}, false));
            list.add(new TensorSpec(p + "self_attn.o_proj.weight", new long[]{h, qDim}, false));
            list.add(new TensorSpec(p + "mlp.gate_proj.weight", new long[]{ff, h}, false));
            list.add(new TensorSpec(p + "mlp.up_proj.weight", new long[]{ff, h}, false));
            list.add(new TensorSpec(p + "mlp.down_proj.weight", new long[]{h, ff}, false));
        }
        list.add(new TensorSpec("model.norm.weight", new long[]{h}, true));
        return list;
    }

    /** config.json contents, with Tiny Aya's fields (keys sorted, as transformers writes them). */
    public static Map<String, Object> config(Shape s, DType dtype) {
        Map<String, Object> c = new TreeMap<>();
        List<String> layerTypes = new ArrayList<>();
        for (int i = 0; i < s.layers(); i++) {
            layerTypes.add(Shape.isGlobalLayer(i) ? "full_attention" : "sliding_attention");
        }
        c.put("architectures", List.of("Cohere2ForCausalLM"));
        c.put("attention_bias", false);
        c.put("attention_dropout", 0.0);
        c.put("bos_token_id", 2);
        c.put("eos_token_id", 3);
        c.put("head_dim", s.headDim());
        c.put("hidden_act", "silu");
        c.put("hidden_size", s.hiddenSize());
        c.put("initializer_range", 0.02);
        c.put("intermediate_size", s.intermediateSize());
        c.put("layer_norm_eps", 1e-05);
        c.put("layer_types", layerTypes);
        c.put("logit_scale", 1.0);
        c.put("max_position_embeddings", 8192);
        c.put("model_type", "cohere2");
        c.put("num_attention_heads", s.heads());
        c.put("num_hidden_layers", s.layers());
        c.put("num_key_value_heads", s.kvHeads());
        c.put("pad_token_id", 0);
        c.put("rope_scaling", null);
        c.put("rope_theta", 50000.0);
        c.put("sliding_window", 4096);
        c.put("sliding_window_pattern", 4);
        c.put("torch_dtype", dtype.torchName);
        c.put("use_cache", true);
        c.put("vocab_size", s.vocabSize());
        return c;
    }

    static Map<String, Object> generationConfig() {
        Map<String, Object> c = new TreeMap<>();
        c.put("bos_token_id", 2);
        c.put("eos_token_id", 3);
        c.put("pad_token_id", 0);
        return c;
    }

    /** Bytes of all weights in {@code dtype}. */
    public static long weightBytes(Shape s, DType dtype) {
        long n = 0;
        for (TensorSpec t : tensors(s)) n += t.elements() * dtype.bytes;
        return n;
    }

    /**
     * Writes the checkpoint into {@code dir}, which must not exist or be empty. Everything is written into a
     * temporary sibling directory that is renamed at the end, so {@code dir} never holds a partial checkpoint.
     */
    public static void write(Path dir, Shape shape, DType dtype, long seed, int threads) {
        Path target = dir.toAbsolutePath().normalize();
        checkTarget(target);
        Path parent = target.getParent();
        long needed = weightBytes(shape, dtype) + (1 << 20);
        try {
            Files.createDirectories(parent);
            long free = Files.getFileStore(parent).getUsableSpace();
            if (free < needed) {
                throw new AyaException(String.format("not enough disk space in %s: need %.2f GB, %.2f GB free",
                        parent, needed / 1e9, free / 1e9));
            }
        } catch (IOException e) {
            throw new AyaException("cannot create " + parent + ": " + e.getMessage(), e);
        }
        Path tmp = parent.resolve("." + target.getFileName() + ".partial-" + ProcessHandle.current().pid());
        // Ctrl-C during a multi-GB write: leave no temporary directory behind
        Thread cleanup = new Thread(() -> deleteTree(tmp));
        Runtime.getRuntime().addShutdownHook(cleanup);
        try (Parallel pool = new Parallel(threads)) {
            deleteTree(tmp);
            Files.createDirectories(tmp);
            writeJson(tmp.resolve("config.json"), config(shape, dtype));
            writeJson(tmp.resolve("generation_config.json"), generationConfig());
            writeShards(tmp, shape, dtype, seed, pool);
            if (Files.isDirectory(target)) {
                Files.delete(target); // checked empty above; rename cannot replace it on every filesystem
            }
            Files.move(tmp, target);
        } catch (IOException e) {
            deleteTree(tmp);
            throw new AyaException("cannot write checkpoint to " + target + ": " + e.getMessage(), e);
        } catch (RuntimeException | Error e) {
            deleteTree(tmp);
            throw e;
        } finally {
            try {
                Runtime.getRuntime().removeShutdownHook(cleanup);
            } catch (IllegalStateException shuttingDown) {
                // the hook is running: it cleans up
            }
        }
    }

    private static void checkTarget(Path target) {
        if (Files.exists(target)) {
            if (!Files.isDirectory(target)) {
                throw new AyaException("output " + target + " exists and is not a directory");
            }
            try (DirectoryStream<Path> entries = Files.newDirectoryStream(target)) {
                if (entries.iterator().hasNext()) {
                    throw new AyaException("output directory " + target + " is not empty");
                }
            } catch (IOException e) {
                throw new AyaException("cannot read " + target + ": " + e.getMessage(), e);
            }
        }
    }

    private static void writeShards(Path dir, Shape shape, DType dtype, long seed, Parallel pool) throws IOException {
        List<TensorSpec> specs = tensors(shape);
        long total = 0;
        for (TensorSpec t : specs) total += t.elements() * dtype.bytes;
        // two shards like the original: the first takes tensors in state-dict order up to half the bytes
        SafetensorsWriter first = new SafetensorsWriter();
        SafetensorsWriter second = new SafetensorsWriter();
        Map<String, String> weightMap = new TreeMap<>();
        long firstBytes = 0;
        boolean firstFull = false;
        for (int i = 0; i < specs.size(); i++) {
            TensorSpec t = specs.get(i);
            long bytes = t.elements() * dtype.bytes;
            boolean last = i == specs.size() - 1; // the final norm always goes to shard 2: it is never empty
            firstFull |= last || (i > 0 && firstBytes + bytes > total / 2);
            boolean inFirst = !firstFull;
            if (inFirst) firstBytes += bytes;
            SafetensorsWriter w = inFirst ? first : second;
            w.add(SafetensorsWriter.Tensor.of(t.name(), dtype.tag, t.shape(), filler(t, dtype, seed, pool)));
            weightMap.put(t.name(), inFirst ? SHARD_1 : SHARD_2);
        }
        first.write(dir.resolve(SHARD_1));
        second.write(dir.resolve(SHARD_2));
        long parameters = 0;
        for (TensorSpec t : specs) parameters += t.elements();
        Map<String, Object> metadata = new TreeMap<>();
        metadata.put("total_parameters", parameters);
        metadata.put("total_size", total);
        Map<String, Object> index = new LinkedHashMap<>();
        index.put("metadata", metadata);
        index.put("weight_map", weightMap);
        writeJson(dir.resolve("model.safetensors.index.json"), index);
    }

    /** Fills chunks of a tensor with its random values, split over the pool's threads. */
    private static SafetensorsWriter.TensorData filler(TensorSpec t, DType dtype, long seed, Parallel pool) {
        long stream = mix64(seed ^ mix64(t.name().hashCode() * 0x9E3779B97F4A7C15L + t.name().length()));
        return (byteOffset, chunk) -> {
            int count = chunk.remaining() / dtype.bytes;
            long firstElement = byteOffset / dtype.bytes;
            pool.forRange(count, 4096, (worker, start, end) -> {
                for (int i = start; i < end; i++) {
                    float v = t.isNorm() ? 1.0f : normal(stream, firstElement + i) * WEIGHT_STD;
                    put(chunk, i, v, dtype);
                }
            });
        };
    }

    private static void put(ByteBuffer chunk, int i, float v, DType dtype) {
        switch (dtype) {
            case BF16 -> chunk.putShort(i * 2, (short) bf16Bits(v));
            case F16 -> chunk.putShort(i * 2, Float.floatToFloat16(v));
            case F32 -> chunk.putFloat(i * 4, v);
        }
    }

    /** bfloat16 bits of v, rounded to nearest even (finite inputs). */
    static int bf16Bits(float v) {
        int bits = Float.floatToRawIntBits(v);
        return (bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16;
    }

    /** SplitMix64's finalizer: a strong 64-bit mixing function. */
    static long mix64(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    // sum of four uniform 16-bit values: mean 4 * 32767.5, sd 65536 / sqrt(3)
    private static final float SUM4_MEAN = 131070f;
    private static final float SUM4_INV_SD = (float) (Math.sqrt(3.0) / 65536.0);

    /**
     * Approximately standard normal value number {@code index} of a stream: the sum of four uniforms
     * (Irwin-Hall, bounded at ±3.46 sd) is close enough for weights and needs one hash per value.
     */
    static float normal(long stream, long index) {
        long h = mix64(stream + index * 0x9E3779B97F4A7C15L);
        long sum = (h & 0xFFFF) + ((h >>> 16) & 0xFFFF) + ((h >>> 32) & 0xFFFF) + (h >>> 48);
        return (sum - SUM4_MEAN) * SUM4_INV_SD;
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    private static void writeJson(Path file, Object value) throws IOException {
        // transformers style: 2-space indent, "key": value, one array element per line
        DefaultPrettyPrinter pp = new DefaultPrettyPrinter()
                .withSeparators(Separators.createDefaultInstance()
                        .withObjectFieldValueSpacing(Separators.Spacing.AFTER));
        pp.indentArraysWith(DefaultIndenter.SYSTEM_LINEFEED_INSTANCE);
        String text = JSON.writer(pp).writeValueAsString(value) + "\n";
        Files.writeString(file, text, StandardCharsets.UTF_8);
    }

    private static void deleteTree(Path root) {
        if (!Files.exists(root)) return;
        try (Stream<Path> walk = Files.walk(root)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        } catch (IOException | UncheckedIOException ignored) {
            // best effort
        }
    }
}
