package aya.model;

import aya.AyaException;
import aya.config.GgufMetadata;
import aya.config.ModelConfig;
import aya.kernels.Kernels;
import aya.kernels.Parallel;
import aya.kernels.WeightType;
import aya.weights.Checkpoint;
import aya.weights.GgufFile;
import aya.weights.QuantizedWeights;
import aya.weights.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Tiny Aya (transformers' {@code Cohere2ForCausalLM}) forward pass, in llama2.c order:
 * weights, run state (KV cache + scratch), forward. The PyTorch reference is
 * {@code transformers/models/cohere2/modeling_cohere2.py}; comments name where Cohere differs from Llama.
 *
 * <p>An {@code AyaForward} is the loaded model: config, memory-mapped weights, kernels and thread pool.
 * It is immutable after {@link #load} and may be shared by many {@link State}s (one per conversation);
 * one State is used by one thread at a time. Shapes below: D hidden, I intermediate, H query heads,
 * KV key/value heads, hd head_dim, V vocab, T tokens in a block, C a KV-cache capacity.
 */
public final class AyaForward implements AutoCloseable {

    /** Largest block of tokens one pass of the layers processes; longer inputs are prefilled block by block. */
    public static final int DEFAULT_MAX_BLOCK = 256;
    /** Output-head rows computed at once when every position's logits are wanted (bounds the logits buffer). */
    static final int HEAD_ROWS = 32;

    // =========================================================================================== weights

    /** A weight matrix [rows, cols] in its file's dtype, read in place by the kernels. */
    record Matrix(WeightType type, MemorySegment data, int rows, int cols) {
        static Matrix of(Tensor t, long rows, long cols) {
            t.expectShape(rows, cols);
            WeightType type = t.weightType();
            // kernels (C above all) read whole elements: a tensor at an odd offset would be a misaligned access (UB)
            long elementBytes = type.quantized() ? 1 : type.rowBytes(1);
            if (t.data().address() % elementBytes != 0) {
                throw new AyaException(t.file() + ": tensor '" + t.name() + "' is not aligned to its " + elementBytes
                        + "-byte elements (odd header or data offset): re-save the checkpoint with safetensors");
            }
            return new Matrix(type, t.data(), (int) rows, (int) cols);
        }
    }

    /** One decoder layer. Cohere: a single LayerNorm feeds both attention and MLP; no biases anywhere. */
    record Layer(
            MemorySegment norm, // [D] f32, input_layernorm.weight (no bias)
            Matrix wq,          // [H*hd, D]
            Matrix wk,          // [KV*hd, D]
            Matrix wv,          // [KV*hd, D]
            Matrix wo,          // [D, H*hd]
            Matrix wGate,       // [I, D]
            Matrix wUp,         // [I, D]
            Matrix wDown,       // [D, I]
            boolean sliding) {  // sliding window + RoPE, else global attention with no position encoding (NoPE)
    }

    private final ModelConfig config;
    private final Checkpoint checkpoint;
    private final Kernels kernels;
    private final Parallel pool;
    private final Matrix embed;     // [V, D] model.embed_tokens.weight
    private final Layer[] layers;
    private final MemorySegment finalNorm; // [D] f32, model.norm.weight
    private final Matrix head;      // [V, D] lm_head.weight, or embed when tied
    private final long weightBytes;
    private volatile Activations activations = Activations.F32;
    private volatile ForwardProfile profile; // null unless a benchmark asked for a per-op profile

    private final Map<String, Tensor> tensors; // the checkpoint's, with quantized matrices in place of their originals

    private AyaForward(ModelConfig config, Checkpoint checkpoint, Kernels kernels, Parallel pool, Map<String, Tensor> quantized) {
        this.config = config;
        this.checkpoint = checkpoint;
        this.kernels = kernels;
        this.pool = pool;
        Map<String, Tensor> all = new LinkedHashMap<>(checkpoint.tensors());
        all.putAll(quantized);
        this.tensors = Collections.unmodifiableMap(all);
        long d = config.hiddenSize(), ff = config.intermediateSize(), v = config.vocabSize();
        long q = config.qDim(), kv = config.kvDim();
        this.embed = Matrix.of(matrix("model.embed_tokens.weight"), v, d);
        this.layers = new Layer[config.numLayers()];
        for (int i = 0; i < layers.length; i++) {
            String p = "model.layers." + i + ".";
            layers[i] = new Layer(
                    vector(p + "input_layernorm.weight", d),
                    Matrix.of(matrix(p + "self_attn.q_proj.weight"), q, d),
                    Matrix.of(matrix(p + "self_attn.k_proj.weight"), kv, d),
                    Matrix.of(matrix(p + "self_attn.v_proj.weight"), kv, d),
                    Matrix.of(matrix(p + "self_attn.o_proj.weight"), d, q),
                    Matrix.of(matrix(p + "mlp.gate_proj.weight"), ff, d),
                    Matrix.of(matrix(p + "mlp.up_proj.weight"), ff, d),
                    Matrix.of(matrix(p + "mlp.down_proj.weight"), d, ff),
                    config.isSliding(i));
        }
        this.finalNorm = vector("model.norm.weight", d);
        // Cohere: the output head is the embedding table unless the config unties it. Like transformers, a checkpoint
        // that still holds lm_head.weight uses it even when tied (transformers only ties when the file has no head).
        this.head = checkpoint.has("lm_head.weight") || !config.tieWordEmbeddings()
                ? Matrix.of(matrix("lm_head.weight"), v, d)
                : embed;
        long bytes = 0;
        for (Tensor t : tensors.values()) {
            bytes += t.data().byteSize();
        }
        this.weightBytes = bytes;
    }

    /** A weight matrix by name: its quantized version when there is one, else the checkpoint's tensor. */
    private Tensor matrix(String name) {
        Tensor t = tensors.get(name);
        return t != null ? t : checkpoint.tensor(name); // the checkpoint names the file in its missing-tensor error
    }

    /** Names of the weight matrices the model multiplies by (the ones --quant converts); norms are not among them. */
    static List<String> matrixNames(ModelConfig config, Checkpoint checkpoint) {
        List<String> names = new ArrayList<>();
        names.add("model.embed_tokens.weight");
        for (int i = 0; i < config.numLayers(); i++) {
            String p = "model.layers." + i + ".";
            for (String m : List.of("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                    "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")) {
                names.add(p + m + ".weight");
            }
        }
        if (checkpoint.has("lm_head.weight") || !config.tieWordEmbeddings()) {
            names.add("lm_head.weight");
        }
        names.removeIf(n -> !checkpoint.has(n)); // a missing tensor is reported by name when the model is built
        return names;
    }

    /** A 1-D weight (LayerNorm) as f32, converted once at load: the kernels read norms in f32. */
    private MemorySegment vector(String name, long n) {
        Tensor t = checkpoint.tensor(name).expectShape(n);
        WeightType type = t.weightType();
        MemorySegment out = checkpoint.arena().allocate(n * Float.BYTES, 64);
        kernels.embed(type, t.data(), 0, (int) n, out);
        return out;
    }

    /**
     * Loads the checkpoint in {@code dir} (config.json + safetensors), validating every tensor's presence and shape.
     * The model owns {@code kernels} from this call on: it closes them with itself, or right away if loading fails.
     */
    public static AyaForward load(Path dir, Kernels kernels, int threads) {
        return load(dir, kernels, threads, null);
    }

    /**
     * Like {@link #load(Path, Kernels, int)}, with the weight matrices quantized to {@code quant} (Q8_0 or Q4_0; null
     * keeps the checkpoint's types). The quantized weights are cached next to the model (see
     * {@link QuantizedWeights}), so only the first load quantizes. LayerNorm weights stay f32.
     */
    public static AyaForward load(Path dir, Kernels kernels, int threads, WeightType quant) {
        if (GgufFile.looksLikeGguf(dir)) {
            Checkpoint gguf = null;
            ModelConfig config;
            try {
                if (quant != null) {
                    throw new AyaException(dir + ": --quant converts safetensors checkpoints; a GGUF file runs in the types it holds"
                            + " (quantize it with llama-quantize instead)");
                }
                gguf = Checkpoint.openGguf(dir);
                config = ggufConfig(gguf);
            } catch (RuntimeException e) {
                if (gguf != null) gguf.close();
                kernels.close();
                throw e;
            }
            return load(gguf, config, kernels, threads);
        }
        Checkpoint checkpoint = null;
        Parallel pool = null;
        try {
            if (!Files.isDirectory(dir)) {
                throw new AyaException(dir + ": not a model directory (a folder with config.json and *.safetensors) or a GGUF file");
            }
            ModelConfig config = ModelConfig.load(dir);
            checkpoint = Checkpoint.open(dir);
            pool = new Parallel(threads);
            Map<String, Tensor> quantized = quant == null ? Map.of()
                    : QuantizedWeights.load(dir, checkpoint, quant, matrixNames(config, checkpoint), System.err).tensors();
            return new AyaForward(config, checkpoint, kernels, pool, quantized);
        } catch (RuntimeException e) {
            if (pool != null) pool.close();
            if (checkpoint != null) checkpoint.close();
            kernels.close();
            throw e;
        }
    }

    /** The config in a GGUF checkpoint's metadata. */
    public static ModelConfig ggufConfig(Checkpoint gguf) {
        return ModelConfig.fromGguf(new GgufMetadata(gguf.describe(), gguf.gguf().metadata()));
    }

    /**
     * Builds the model on an opened checkpoint (e.g. a GGUF whose metadata the caller has read), validating every
     * tensor's presence and shape. The model owns {@code checkpoint} and {@code kernels} from this call on: it closes
     * them with itself, or right away if building fails.
     */
    public static AyaForward load(Checkpoint checkpoint, ModelConfig config, Kernels kernels, int threads) {
        Parallel pool = null;
        try {
            pool = new Parallel(threads);
            return new AyaForward(config, checkpoint, kernels, pool, Map.of());
        } catch (RuntimeException e) {
            if (pool != null) pool.close();
            checkpoint.close();
            kernels.close();
            throw e;
        }
    }

    public ModelConfig config() {
        return config;
    }

    public Kernels kernels() {
        return kernels;
    }

    public Activations activations() {
        return activations;
    }

    /**
     * Chooses the activation precision of the matrix products (default f32); bf16 rounds the activations entering the
     * bf16 weight matrices in prefill (see {@link Activations#BF16}). Refused for a model without bf16 matrices (e.g.
     * f32 or quantized), where it would change nothing. Not while a forward pass runs.
     */
    public void activations(Activations a) {
        boolean anyBf16 = head.type() == WeightType.BF16;
        for (Layer layer : layers) {
            anyBf16 |= layer.wGate.type() == WeightType.BF16;
        }
        if (a == Activations.BF16 && !anyBf16) {
            throw new AyaException("bf16 activations need bf16 weight matrices; this model's are "
                    + head.type().name().toLowerCase(Locale.ROOT) + " (use --activations f32)");
        }
        this.activations = a;
    }

    public int threads() {
        return pool.threads();
    }

    /** Every tensor of the checkpoint, by name (views into the mapped files), quantized matrices in place of their originals. */
    public java.util.Map<String, Tensor> tensors() {
        return tensors;
    }

    /**
     * Times every forward pass per operation into {@code p} from now on (null stops). For benchmarks: the timing
     * costs a few dozen clock reads per layer.
     */
    public void profile(ForwardProfile p) {
        this.profile = p;
    }

    /** Bytes of all tensors as the model reads them (quantized sizes after --quant). */
    public long weightBytes() {
        return weightBytes;
    }

    /** True when the output head is the embedding table (no lm_head.weight in the checkpoint). */
    public boolean headTied() {
        return head == embed;
    }

    /** Parameters of the model as it runs (a tied head counts once). */
    public long parameterCount() {
        long d = config.hiddenSize(), ff = config.intermediateSize();
        long perLayer = d + 2 * config.qDim() * d + 2 * config.kvDim() * d + 3 * ff * d;
        long n = (long) config.vocabSize() * d + config.numLayers() * perLayer + d;
        return head == embed ? n : n + (long) config.vocabSize() * d;
    }

    @Override
    public void close() {
        pool.close();
        kernels.close();
        checkpoint.close();
    }

    // =========================================================================================== run state

    /**
     * Per-conversation state: the KV cache, scratch activations and the position of the next token.
     * Native memory from its own arena, freed by {@link #close()}.
     *
     * <p>KV cache per layer, f32 [C, KV, hd] for K and for V; position p sits in slot {@code p % C}. Global layers
     * keep every position: C = context. Sliding layers keep a ring of C = min(context, window + maxBlock - 1):
     * a block writes all its keys before its queries read, so the ring must hold the window of the block's first
     * query plus the block's other keys. Its size does not grow with the context.
     */
    public final class State implements AutoCloseable {
        private final Arena arena = Arena.ofShared();
        final int context;          // positions this state can hold
        final int maxBlock;         // tokens per pass of the layers
        final int[] capacity;       // [layers] KV slots per layer
        final MemorySegment[] keys; // [layers] f32 [C, KV, hd]
        final MemorySegment[] values;
        final MemorySegment x;      // [maxBlock, D] residual stream
        final MemorySegment xb;     // [maxBlock, D] LayerNorm output
        final MemorySegment q;      // [maxBlock, H*hd]
        final MemorySegment k;      // [maxBlock, KV*hd]
        final MemorySegment v;      // [maxBlock, KV*hd]
        final MemorySegment att;    // [maxBlock, H*hd] attention output before o_proj
        final MemorySegment attOut; // [maxBlock, D]
        final MemorySegment gate;   // [maxBlock, I]
        final MemorySegment up;     // [maxBlock, I]
        final MemorySegment mlpOut; // [maxBlock, D]
        final MemorySegment cos;    // [maxBlock, hd/2] RoPE table for the block's positions
        final MemorySegment sin;    // [maxBlock, hd/2]
        final MemorySegment scores; // [threads, max C] attention scratch, one row per worker
        final MemorySegment logits; // [HEAD_ROWS, V]
        final int scoresStride;
        int position;               // tokens already in the cache = position of the next token

        State(int context, int maxBlock) {
            this.context = context;
            this.maxBlock = maxBlock;
            int nl = config.numLayers(), d = config.hiddenSize(), ff = config.intermediateSize();
            int qd = config.qDim(), kvd = config.kvDim(), half = config.headDim() / 2;
            capacity = new int[nl];
            keys = new MemorySegment[nl];
            values = new MemorySegment[nl];
            int maxCap = 1;
            for (int l = 0; l < nl; l++) {
                capacity[l] = config.isSliding(l)
                        ? Math.min(context, config.slidingWindow() + maxBlock - 1)
                        : context;
                keys[l] = floats((long) capacity[l] * kvd);
                values[l] = floats((long) capacity[l] * kvd);
                maxCap = Math.max(maxCap, capacity[l]);
            }
            x = floats((long) maxBlock * d);
            xb = floats((long) maxBlock * d);
            q = floats((long) maxBlock * qd);
            k = floats((long) maxBlock * kvd);
            v = floats((long) maxBlock * kvd);
            att = floats((long) maxBlock * qd);
            attOut = floats((long) maxBlock * d);
            gate = floats((long) maxBlock * ff);
            up = floats((long) maxBlock * ff);
            mlpOut = floats((long) maxBlock * d);
            cos = floats((long) maxBlock * half);
            sin = floats((long) maxBlock * half);
            scoresStride = (maxCap + 15) & ~15;
            scores = floats((long) pool.threads() * scoresStride);
            logits = floats((long) HEAD_ROWS * config.vocabSize());
        }

        private MemorySegment floats(long n) {
            return arena.allocate(Math.max(1, n) * Float.BYTES, 64);
        }

        AyaForward owner() {
            return AyaForward.this;
        }

        /** Tokens in the cache; the next token goes at this position. */
        public int position() {
            return position;
        }

        /** Positions this state can hold. */
        public int context() {
            return context;
        }

        /** Forgets every token (the cache is overwritten as new tokens come). */
        public void reset() {
            position = 0;
        }

        /**
         * Rewinds to {@code newPosition} (keeping tokens before it), e.g. to re-run a changed suffix.
         * A sliding layer's ring keeps only its last C keys, so a rewind may go back at most C - window + 1 tokens
         * once the ring has wrapped; further back needs {@link #reset()} and a new prefill.
         */
        public void rewind(int newPosition) {
            if (newPosition < 0 || newPosition > position) {
                throw new IllegalArgumentException("cannot rewind to " + newPosition + ", position is " + position);
            }
            for (int l = 0; l < capacity.length; l++) {
                if (config.isSliding(l) && position > capacity[l]
                        && position - newPosition > capacity[l] - config.slidingWindow() + 1) {
                    throw new IllegalArgumentException("cannot rewind " + (position - newPosition)
                            + " tokens: the sliding-window cache keeps only " + (capacity[l] - config.slidingWindow() + 1)
                            + " beyond the window; reset and prefill again");
                }
            }
            position = newPosition;
        }

        /** KV-cache bytes this state holds. */
        public long kvCacheBytes() {
            long n = 0;
            for (MemorySegment s : keys) n += 2 * s.byteSize();
            return n;
        }

        @Override
        public void close() {
            arena.close();
        }
    }

    /** A state for up to {@code context} positions (capped by max_position_embeddings), prefilling in blocks of maxBlock. */
    public State newState(int context, int maxBlock) {
        if (context < 1) {
            throw new AyaException("context must be at least 1, got " + context);
        }
        if (maxBlock < 1) {
            throw new AyaException("block size must be at least 1, got " + maxBlock);
        }
        int ctx = Math.min(context, config.maxPositionEmbeddings());
        int block = Math.min(maxBlock, ctx);
        checkpoint.verifyUnchanged(); // a weight file shrunk under its mapping would crash the process (SIGBUS) mid-run
        // native memory is not bounded by -Xmx and Linux overcommits: refuse before allocating, not when filling
        MemoryLimits.checkFits(stateBytes(ctx, block), MemoryLimits.limitBytes(), ctx);
        return new State(ctx, block);
    }

    /** Native bytes a State of this context and block size allocates (KV cache + activations + scratch). */
    public long stateBytes(int context, int maxBlock) {
        return MemoryLimits.stateBytes(config, context, maxBlock, pool.threads());
    }

    public State newState(int context) {
        return newState(context, DEFAULT_MAX_BLOCK);
    }

    /** Receives the logits of one input position: {@code row} holds V f32 values, valid only during the call. */
    @FunctionalInterface
    public interface LogitsSink {
        void accept(int index, MemorySegment row);
    }

    // =========================================================================================== forward

    /**
     * Feeds {@code tokens} at the state's position and returns the logits [V] of the last one
     * (a view into the state, valid until its next forward). The output head runs only for that token.
     */
    public MemorySegment forward(State s, int[] tokens) {
        if (tokens.length == 0) {
            throw new IllegalArgumentException("no tokens to feed");
        }
        MemorySegment[] last = new MemorySegment[1];
        runGuarded(s, tokens, false, (i, row) -> last[0] = row);
        return last[0];
    }

    /** Feeds {@code tokens} and hands the logits of every one of them to {@code sink}, in order. */
    public void forwardAll(State s, int[] tokens, LogitsSink sink) {
        runGuarded(s, tokens, true, sink);
    }

    private void run(State s, int[] tokens, boolean allLogits, LogitsSink sink) {
        if (s.owner() != this) {
            throw new IllegalArgumentException("this state was made by another model");
        }
        checkTokens(s, tokens);
        ForwardProfile p = profile;
        if (p != null) p.countPass();
        for (int start = 0; start < tokens.length; start += s.maxBlock) {
            int n = Math.min(s.maxBlock, tokens.length - start);
            boolean lastBlock = start + n == tokens.length;
            block(s, tokens, start, n, p);
            checkpoint.checkIntact(); // a weight file truncated during the block: its lost pages read as zeros
            if (allLogits) {
                head(s, 0, n, start, sink, p);
            } else if (lastBlock) {
                head(s, n - 1, 1, start, sink, p);
            }
        }
        checkpoint.checkIntact();
    }

    /** {@link #run}, naming the weight file when the JVM reports a read of a lost mapped page (no native guard). */
    private void runGuarded(State s, int[] tokens, boolean allLogits, LogitsSink sink) {
        try {
            run(s, tokens, allLogits, sink);
        } catch (InternalError e) {
            checkpoint.verifyUnchanged(); // throws the one-line error if a file changed; else this is another error
            throw e;
        }
    }

    /** Every check that can fail on user input, before any work: ids in range, room in the context. */
    private void checkTokens(State s, int[] tokens) {
        int vocab = config.vocabSize();
        for (int i = 0; i < tokens.length; i++) {
            if (tokens[i] < 0 || tokens[i] >= vocab) {
                throw new AyaException("token id " + tokens[i] + " (input position " + i + ") is out of range: vocab_size is " + vocab);
            }
        }
        if ((long) s.position + tokens.length > s.context) {
            throw new AyaException((s.position + tokens.length) + " tokens do not fit the context of " + s.context
                    + (s.position > 0 ? " (" + s.position + " already in the cache)" : ""));
        }
    }

    /** One pass of every layer over tokens[start, start + n) at positions s.position..; advances the position. */
    private void block(State s, int[] tokens, int start, int n, ForwardProfile p) {
        ModelConfig c = config;
        int d = c.hiddenSize(), heads = c.numHeads(), kvHeads = c.numKvHeads();
        int hd = c.headDim(), kvd = c.kvDim();
        int pos0 = s.position;
        long t0 = p == null ? 0 : System.nanoTime();

        // x = embed_tokens(ids). Cohere: no embedding scaling.
        for (int t = 0; t < n; t++) {
            kernels.embed(embed.type(), embed.data(), tokens[start + t], d, s.x.asSlice((long) t * d * Float.BYTES));
        }
        ropeTables(s, pos0, n);
        t0 = lap(p, ForwardProfile.Op.EMBED, t0);

        for (int l = 0; l < layers.length; l++) {
            Layer layer = layers[l];
            MemorySegment keyCache = s.keys[l], valueCache = s.values[l]; // [C, KV, hd]
            // h = input_layernorm(x): fp32 LayerNorm with mean subtraction and no bias (not RMSNorm)
            kernels.layerNorm(s.x, layer.norm, s.xb, n, d, c.layerNormEps());
            t0 = lap(p, ForwardProfile.Op.LAYERNORM, t0);

            // q, k, v = h Wq^T, h Wk^T, h Wv^T   [n, H*hd], [n, KV*hd], [n, KV*hd]
            // and, on the same h (Cohere's parallel block), gate = silu(h Wgate^T) * (h Wup^T)   [n, I]
            projectionsIn(layer, s, n);
            t0 = lap(p, ForwardProfile.Op.PROJECTIONS_IN, t0);
            if (layer.sliding) {
                // Cohere2: RoPE (interleaved pairs 2i, 2i+1) on sliding layers only; global layers use no positions (NoPE)
                kernels.ropeInterleaved(s.q, n, heads, hd, 0, s.cos, s.sin);
                kernels.ropeInterleaved(s.k, n, kvHeads, hd, 0, s.cos, s.sin);
                t0 = lap(p, ForwardProfile.Op.ROPE, t0);
            }
            // Write the block's keys and values into the cache (slot = position % C: a ring on sliding layers)
            int cap = s.capacity[l];
            for (int t = 0; t < n; t++) {
                long slot = (pos0 + t) % cap;
                MemorySegment.copy(s.k, (long) t * kvd * Float.BYTES, keyCache, slot * kvd * Float.BYTES, (long) kvd * Float.BYTES);
                MemorySegment.copy(s.v, (long) t * kvd * Float.BYTES, valueCache, slot * kvd * Float.BYTES, (long) kvd * Float.BYTES);
            }
            t0 = lap(p, ForwardProfile.Op.KV_WRITE, t0);
            // att = softmax(q k^T * hd^-0.5 + mask) v, f32; sliding layers see q - window < k <= q, global k <= q; GQA
            int window = layer.sliding ? c.slidingWindow() : 0;
            float scale = (float) (1.0 / Math.sqrt(hd));
            pool.forRange(n * heads, 1, (worker, from, to) -> kernels.attention(
                    s.q, keyCache, valueCache, s.att, n, pos0, heads, kvHeads, hd, cap, window, scale,
                    s.scores.asSlice((long) worker * s.scoresStride * Float.BYTES, (long) s.scoresStride * Float.BYTES),
                    from, to));
            t0 = lap(p, ForwardProfile.Op.ATTENTION, t0);

            // attn(h) = o_proj(att), mlp(h) = down_proj(gate); Cohere: parallel block, x = x + attn(h) + mlp(h)
            projectionsOut(layer, s, n);
            t0 = lap(p, ForwardProfile.Op.PROJECTIONS_OUT, t0);
        }
        s.position = pos0 + n;
    }

    /** Logits for block rows [from, from + count): model.norm, then h . head^T * logit_scale, HEAD_ROWS at a time. */
    private void head(State s, int from, int count, int blockStart, LogitsSink sink, ForwardProfile p) {
        int d = config.hiddenSize(), vocab = config.vocabSize();
        float logitScale = config.logitScale();
        long t0 = p == null ? 0 : System.nanoTime();
        for (int r0 = from; r0 < from + count; r0 += HEAD_ROWS) {
            int rows = Math.min(HEAD_ROWS, from + count - r0);
            MemorySegment h = s.xb.asSlice((long) r0 * d * Float.BYTES, (long) rows * d * Float.BYTES);
            kernels.layerNorm(s.x.asSlice((long) r0 * d * Float.BYTES), finalNorm, h, rows, d, config.layerNormEps());
            t0 = lap(p, ForwardProfile.Op.HEAD_NORM, t0);
            matmul(head, h, s.logits, rows, count > 1); // bf16 activations: every row of a prefill's logits alike
            t0 = lap(p, ForwardProfile.Op.HEAD, t0);
            long total = logitScale == 1.0f ? 0 : (long) rows * vocab; // x * 1.0f == x: Tiny Aya skips the pass
            for (long i = 0; i < total; i++) {
                // Cohere: logits are scaled by logit_scale (0.0625 by default, 1.0 in Tiny Aya)
                s.logits.setAtIndex(ValueLayout.JAVA_FLOAT, i, s.logits.getAtIndex(ValueLayout.JAVA_FLOAT, i) * logitScale);
            }
            t0 = lap(p, ForwardProfile.Op.LOGIT_SCALE, t0);
            for (int r = 0; r < rows; r++) {
                sink.accept(blockStart + r0 + r, s.logits.asSlice((long) r * vocab * Float.BYTES, (long) vocab * Float.BYTES));
            }
        }
    }

    /**
     * Every matrix that reads h, in one job over the pool: q, k, v = h Wq^T, h Wk^T, h Wv^T and
     * gate = silu(h Wgate^T) * (h Wup^T). Their rows are split as one range [q | k | v | (gate, up) pairs], so the
     * threads synchronize once instead of twice per layer (decode is ~180 such hand-offs per token). A gate row and
     * its up row count as two rows and always go to the same thread, which applies SwiGLU to its own rows.
     * Each output row is one kernel call's dot products whichever thread runs it: the split never changes a bit.
     */
    private void projectionsIn(Layer layer, State s, int n) {
        int qRows = layer.wq.rows(), kRows = layer.wk.rows(), vRows = layer.wv.rows(), ff = layer.wGate.rows();
        int qkvRows = qRows + kRows + vRows;
        pool.forRange(qkvRows + 2 * ff, 8, (worker, from, to) -> {
            rowSlice(layer.wq, s.xb, s.q, n, from, to, 0);
            rowSlice(layer.wk, s.xb, s.k, n, from, to, qRows);
            rowSlice(layer.wv, s.xb, s.v, n, from, to, qRows + kRows);
            // pair index j covers stacked rows qkvRows + 2j and + 2j + 1; floor on both ends partitions [0, ff)
            int ffFrom = Math.max(from - qkvRows, 0) / 2, ffTo = Math.max(to - qkvRows, 0) / 2;
            if (ffFrom < ffTo) {
                product(layer.wGate, s.xb, s.gate, n, ff, ffFrom, ffTo, n > 1);
                product(layer.wUp, s.xb, s.up, n, ff, ffFrom, ffTo, n > 1);
                for (int t = 0; t < n; t++) {
                    kernels.swiglu(s.gate, s.up, (long) t * ff + ffFrom, (long) t * ff + ffTo);
                }
            }
        });
    }

    /**
     * attOut = att Wo^T, mlpOut = gate Wdown^T and x += attOut + mlpOut, in one job: both matrices have D rows, so
     * each thread computes the same slice of D of both and adds its slice to the residual stream.
     */
    private void projectionsOut(Layer layer, State s, int n) {
        Matrix wo = layer.wo, down = layer.wDown;
        int d = wo.rows();
        pool.forRange(d, 4, (worker, from, to) -> {
            product(wo, s.att, s.attOut, n, d, from, to, n > 1);
            product(down, s.gate, s.mlpOut, n, d, from, to, n > 1);
            for (int t = 0; t < n; t++) {
                residual(s.x, s.attOut, s.mlpOut, (long) t * d + from, (long) t * d + to);
            }
        });
    }

    /** The part of rows [from, to) of a stacked range that falls in matrix w, which starts at row {@code offset}. */
    private void rowSlice(Matrix w, MemorySegment x, MemorySegment out, int tokens, int from, int to, int offset) {
        int start = Math.max(from - offset, 0), end = Math.min(to - offset, w.rows());
        if (start < end) {
            product(w, x, out, tokens, w.rows(), start, end, tokens > 1);
        }
    }

    /**
     * out[t, :] = w x[t, :] for t < tokens, rows split over the pool (tokens > 1 is matrix-matrix work); prefill says
     * whether these rows belong to a pass of several tokens (see {@link #product}).
     */
    private void matmul(Matrix w, MemorySegment x, MemorySegment out, int tokens, boolean prefill) {
        pool.forRange(w.rows(), 4, (worker, from, to) -> product(w, x, out, tokens, w.rows(), from, to, prefill));
    }

    /** Rows [from, to) of x w^T; with --activations bf16, a prefill rounds x to bf16 for bf16 weights. */
    private void product(Matrix w, MemorySegment x, MemorySegment out, int tokens, int outStride, int from, int to,
                         boolean prefill) {
        if (prefill && activations == Activations.BF16 && w.type() == WeightType.BF16) {
            kernels.matmulBf16Activations(w.data(), x, out, tokens, w.cols(), outStride, from, to);
        } else {
            kernels.matmul(w.type(), w.data(), x, out, tokens, w.cols(), outStride, from, to);
        }
    }

    /** Profiling: adds the time since t0 to op when p is on; returns the next phase's start. */
    private static long lap(ForwardProfile p, ForwardProfile.Op op, long t0) {
        return p == null ? 0 : p.lap(op, t0);
    }

    /** x[i] = x[i] + a[i] + b[i] for i in [from, to) (in this order: attention first, as transformers adds). */
    private static void residual(MemorySegment x, MemorySegment a, MemorySegment b, long from, long to) {
        for (long i = from; i < to; i++) {
            float v = x.getAtIndex(ValueLayout.JAVA_FLOAT, i) + a.getAtIndex(ValueLayout.JAVA_FLOAT, i)
                    + b.getAtIndex(ValueLayout.JAVA_FLOAT, i);
            x.setAtIndex(ValueLayout.JAVA_FLOAT, i, v);
        }
    }

    /**
     * cos/sin [n, hd/2] for positions pos0..pos0+n-1, computed in f32 like transformers:
     * inv_freq[i] = 1 / theta^(2i/hd), angle = pos * inv_freq[i].
     */
    private void ropeTables(State s, int pos0, int n) {
        int hd = config.headDim(), half = hd / 2;
        float theta = (float) config.ropeTheta();
        for (int i = 0; i < half; i++) {
            float invFreq = 1.0f / (float) Math.pow(theta, (float) (2 * i) / hd);
            for (int t = 0; t < n; t++) {
                float angle = (float) (pos0 + t) * invFreq;
                s.cos.setAtIndex(ValueLayout.JAVA_FLOAT, (long) t * half + i, (float) Math.cos(angle));
                s.sin.setAtIndex(ValueLayout.JAVA_FLOAT, (long) t * half + i, (float) Math.sin(angle));
            }
        }
    }

    // =========================================================================================== info

    /** KV-cache bytes per token of context: global layers only (sliding layers have a fixed ring). */
    public long kvBytesPerToken() {
        long globals = 0;
        for (Layer l : layers) {
            if (!l.sliding) globals++;
        }
        return globals * 2L * config.kvDim() * Float.BYTES;
    }

    /** Fixed KV bytes of the sliding layers' rings for a state with blocks of maxBlock tokens. */
    public long slidingKvBytes(int context, int maxBlock) {
        long sliding = 0;
        for (Layer l : layers) {
            if (l.sliding) sliding++;
        }
        long cap = Math.min(context, (long) config.slidingWindow() + maxBlock - 1);
        return sliding * cap * 2L * config.kvDim() * Float.BYTES;
    }
}
