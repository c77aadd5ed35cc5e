package aya.model;

import aya.AyaException;
import aya.config.GgufMetadata;
import aya.config.ModelConfig;
import aya.kernels.Kernels;
import aya.kernels.PackedMatrix;
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
import java.util.Arrays;
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
    /**
     * Pieces per thread a weight-streaming job over few tokens is cut into (the pool hands them out in order): a
     * thread that starts late or runs slow leaves pieces to the other instead of the other idling at the end. Each
     * piece is one kernel call per matrix it covers, which re-reads (and for Q8_0/Q4_0 re-quantizes) the activations:
     * cheap next to the weights in a decode step (see {@link #pieceRows}).
     */
    static final int PIECES_PER_THREAD = 4;
    /** Tokens a step may have for the kernels' decode loop (AYA_MV_FEW_TOKENS in native/src/kernels_internal.h). */
    static final int FEW_TOKENS = 8;

    // =========================================================================================== weights

    /**
     * A weight matrix [rows, cols] in its file's dtype, read in place by the kernels, and the backend's own copy of
     * it when the backend packs that type (else null; see {@link Kernels#pack}): products then read the copy.
     */
    record Matrix(WeightType type, MemorySegment data, int rows, int cols, PackedMatrix packed) {
        static Matrix of(Tensor t, long rows, long cols) {
            t.expectShape(rows, cols);
            WeightType type = t.weightType();
            // kernels (C above all) read whole elements: a tensor at an odd offset would be a misaligned access (UB)
            long elementBytes = type.quantized() ? 1 : type.rowBytes(1);
            if (t.data().address() % elementBytes != 0) {
                throw new AyaException(t.file() + ": tensor '" + t.name() + "' is not aligned to its " + elementBytes
                        + "-byte elements (odd header or data offset): re-save the checkpoint with safetensors");
            }
            return new Matrix(type, t.data(), (int) rows, (int) cols, null);
        }

        /** Bytes a product with this matrix reads. */
        long productBytes() {
            return packed != null ? packed.byteSize() : data.byteSize();
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
    private final Matrix head;      // [V, D] lm_head.weight, or embed (possibly packed) when tied
    private final boolean headTied;
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
                    packed(Matrix.of(matrix(p + "self_attn.q_proj.weight"), q, d)),
                    packed(Matrix.of(matrix(p + "self_attn.k_proj.weight"), kv, d)),
                    packed(Matrix.of(matrix(p + "self_attn.v_proj.weight"), kv, d)),
                    packed(Matrix.of(matrix(p + "self_attn.o_proj.weight"), d, q)),
                    packed(Matrix.of(matrix(p + "mlp.gate_proj.weight"), ff, d)),
                    packed(Matrix.of(matrix(p + "mlp.up_proj.weight"), ff, d)),
                    packed(Matrix.of(matrix(p + "mlp.down_proj.weight"), d, ff)),
                    config.isSliding(i));
        }
        this.finalNorm = vector("model.norm.weight", d);
        // Cohere: the output head is the embedding table unless the config unties it. Like transformers, a checkpoint
        // that still holds lm_head.weight uses it even when tied (transformers only ties when the file has no head).
        this.headTied = !checkpoint.has("lm_head.weight") && config.tieWordEmbeddings();
        this.head = packed(headTied ? embed : Matrix.of(matrix("lm_head.weight"), v, d)); // lookups keep reading embed
        long bytes = 0;
        for (Tensor t : tensors.values()) {
            bytes += t.data().byteSize();
        }
        this.weightBytes = bytes;
    }

    /** m with the backend's packed copy when it packs m's type (once, at load), else m. */
    private Matrix packed(Matrix m) {
        PackedMatrix p = kernels.pack(m.type(), m.data(), m.rows(), m.cols(), pool);
        return p == null ? m : new Matrix(m.type(), m.data(), m.rows(), m.cols(), p);
    }

    /** The matrices the products read: every layer's seven and the output head. */
    private List<Matrix> matrices() {
        List<Matrix> all = new ArrayList<>();
        for (Layer l : layers) {
            all.addAll(List.of(l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown));
        }
        all.add(head);
        return all;
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
     * bf16 weight matrices (see {@link Activations#BF16}). Refused for a model without bf16 matrices (e.g.
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

    /** Bytes of all tensors as the model reads them (quantized sizes after --quant); packed copies not included. */
    public long weightBytes() {
        return weightBytes;
    }

    /** Bytes of the backend's packed copies of matrices (see {@link Kernels#pack}), held on top of the weights. */
    public long packedBytes() {
        long bytes = 0;
        for (Matrix m : matrices()) {
            if (m.packed() != null) bytes += m.packed().byteSize();
        }
        return bytes;
    }

    /** Weight bytes one decode step reads: every matrix's product (packed copies where made), norms, one embedding row. */
    public long decodeWeightBytes() {
        long bytes = 0;
        for (Matrix m : matrices()) {
            bytes += m.productBytes();
        }
        long d = config.hiddenSize();
        bytes += (layers.length + 1) * d * Float.BYTES + embed.type().rowBytes(d);
        return bytes;
    }

    /** True when the output head is the embedding table (no lm_head.weight in the checkpoint). */
    public boolean headTied() {
        return headTied;
    }

    /** Parameters of the model as it runs (a tied head counts once). */
    public long parameterCount() {
        long d = config.hiddenSize(), ff = config.intermediateSize();
        long perLayer = d + 2 * config.qDim() * d + 2 * config.kvDim() * d + 3 * ff * d;
        long n = (long) config.vocabSize() * d + config.numLayers() * perLayer + d;
        return headTied ? n : n + (long) config.vocabSize() * d;
    }

    @Override
    public void close() {
        pool.close();
        kernels.close();
        checkpoint.close();
    }

    // =========================================================================================== run state

    /**
     * Per-conversation state: the KV cache and the position of the next token, plus (for {@link #forward(State, int[])}
     * and {@link #forwardAll}) its own {@link Scratch}; states stepped together by {@link #forward(Scratch, List,
     * BatchLogitsSink)} share the caller's scratch instead. Native memory from its own arena, freed by {@link #close()}.
     *
     * <p>KV cache per layer, f32 [C, KV, hd] for K and for V; position p sits in slot {@code p % C}. Global layers
     * keep every position: C = context. Sliding layers keep a ring of C = min(context, window + maxBlock - 1):
     * a block writes all its keys before its queries read, so the ring must hold the window of the block's first
     * query plus the block's other keys. Its size does not grow with the context.
     */
    public final class State implements AutoCloseable {
        private final Arena arena = Arena.ofShared();
        final int context;          // positions this state can hold
        final int maxBlock;         // tokens of this state per pass of the layers
        final int[] capacity;       // [layers] KV slots per layer
        final int maxCapacity;      // max over capacity: the attention scores a query needs
        final MemorySegment[] keys; // [layers] f32 [C, KV, hd]
        final MemorySegment[] values;
        final Scratch scratch;      // [maxBlock rows] for forward/forwardAll; null for a state stepped in batches
        private final long bytes;   // native bytes allocated, KV + scratch
        int position;               // tokens already in the cache = position of the next token

        State(int context, int maxBlock, boolean ownScratch) {
            this.context = context;
            this.maxBlock = maxBlock;
            int nl = config.numLayers(), kvd = config.kvDim();
            capacity = new int[nl];
            keys = new MemorySegment[nl];
            values = new MemorySegment[nl];
            int maxCap = 1;
            long allocated = 0;
            for (int l = 0; l < nl; l++) {
                capacity[l] = config.isSliding(l)
                        ? Math.min(context, config.slidingWindow() + maxBlock - 1)
                        : context;
                keys[l] = floats(arena, (long) capacity[l] * kvd);
                values[l] = floats(arena, (long) capacity[l] * kvd);
                allocated += keys[l].byteSize() + values[l].byteSize();
                maxCap = Math.max(maxCap, capacity[l]);
            }
            maxCapacity = maxCap;
            scratch = ownScratch ? new Scratch(arena, maxBlock, maxCap) : null;
            bytes = allocated + (scratch == null ? 0 : scratch.bytes);
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

        /** Tokens of this state one pass of the layers may take (the most a batch step may feed it). */
        public int maxBlock() {
            return maxBlock;
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

        /** Native bytes this state allocated: its KV cache, plus its own scratch activations if it has them. */
        public long byteSize() {
            return bytes;
        }

        @Override
        public void close() {
            arena.close();
        }
    }

    /**
     * Activations of one pass of the layers over up to maxRows rows (tokens of one or several sequences), reused by
     * every pass: nothing is allocated per step. Rows of all sequences in a step are concatenated, so each weight
     * matrix is one matrix-matrix product over them.
     */
    public final class Scratch implements AutoCloseable {
        private final Arena arena;  // its own (newScratch), or the state's it belongs to (not closed here)
        final int maxRows;
        final int scoresCapacity;   // KV slots a query may attend to (the largest capacity of the states it serves)
        final MemorySegment x;      // [maxRows, D] residual stream
        final MemorySegment xb;     // [maxRows, D] LayerNorm output
        final MemorySegment q;      // [maxRows, H*hd]
        final MemorySegment k;      // [maxRows, KV*hd]
        final MemorySegment v;      // [maxRows, KV*hd]
        final MemorySegment att;    // [maxRows, H*hd] attention output before o_proj
        final MemorySegment attOut; // [maxRows, D]
        final MemorySegment gate;   // [maxRows, I]
        final MemorySegment up;     // [maxRows, I]
        final MemorySegment mlpOut; // [maxRows, D]
        final MemorySegment cos;    // [maxRows, hd/2] RoPE table, row r at its own sequence's position
        final MemorySegment sin;    // [maxRows, hd/2]
        final MemorySegment scores; // [threads, scoresStride] attention scratch, one row per worker
        final MemorySegment logits; // [HEAD_ROWS, V]
        final int scoresStride;
        final long bytes;

        Scratch(Arena arena, int maxRows, int scoresCapacity) {
            this.arena = arena;
            this.maxRows = maxRows;
            this.scoresCapacity = scoresCapacity;
            int d = config.hiddenSize(), ff = config.intermediateSize();
            int qd = config.qDim(), kvd = config.kvDim(), half = config.headDim() / 2;
            x = floats(arena, (long) maxRows * d);
            xb = floats(arena, (long) maxRows * d);
            q = floats(arena, (long) maxRows * qd);
            k = floats(arena, (long) maxRows * kvd);
            v = floats(arena, (long) maxRows * kvd);
            att = floats(arena, (long) maxRows * qd);
            attOut = floats(arena, (long) maxRows * d);
            gate = floats(arena, (long) maxRows * ff);
            up = floats(arena, (long) maxRows * ff);
            mlpOut = floats(arena, (long) maxRows * d);
            cos = floats(arena, (long) maxRows * half);
            sin = floats(arena, (long) maxRows * half);
            scoresStride = (scoresCapacity + 15) & ~15;
            scores = floats(arena, (long) pool.threads() * scoresStride);
            logits = floats(arena, (long) HEAD_ROWS * config.vocabSize());
            long n = 0;
            for (MemorySegment s : List.of(x, xb, q, k, v, att, attOut, gate, up, mlpOut, cos, sin, scores, logits)) {
                n += s.byteSize();
            }
            bytes = n;
        }

        AyaForward owner() {
            return AyaForward.this;
        }

        /** Rows one pass can take. */
        public int maxRows() {
            return maxRows;
        }

        /** Native bytes of these activations. */
        public long byteSize() {
            return bytes;
        }

        /** Frees a scratch made by {@link #newScratch}; a state's own scratch goes with the state. */
        @Override
        public void close() {
            arena.close();
        }
    }

    private static MemorySegment floats(Arena arena, long n) {
        return arena.allocate(Math.max(1, n) * Float.BYTES, 64);
    }

    /** A state for up to {@code context} positions (capped by max_position_embeddings), prefilling in blocks of maxBlock. */
    public State newState(int context, int maxBlock) {
        return newState(context, maxBlock, true);
    }

    /**
     * A state without activations of its own, for {@link #forward(Scratch, List, BatchLogitsSink)}: its KV cache only.
     * maxBlock is the most tokens one batch step may feed it.
     */
    public State newBatchState(int context, int maxBlock) {
        return newState(context, maxBlock, false);
    }

    private State newState(int context, int maxBlock, boolean ownScratch) {
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
        long bytes = ownScratch ? stateBytes(ctx, block) : MemoryLimits.kvBytes(config, ctx, block);
        MemoryLimits.checkFits(bytes, MemoryLimits.limitBytes(), ctx);
        return new State(ctx, block, ownScratch);
    }

    /**
     * Activations for batch steps of up to {@code maxRows} rows over states of up to {@code context} positions.
     * Freed by its {@link Scratch#close()}.
     */
    public Scratch newScratch(int maxRows, int context) {
        if (maxRows < 1) {
            throw new AyaException("a batch must hold at least 1 row, got " + maxRows);
        }
        int ctx = Math.max(1, Math.min(context, config.maxPositionEmbeddings()));
        MemoryLimits.checkFits(scratchBytes(maxRows, ctx), MemoryLimits.limitBytes(), ctx);
        return new Scratch(Arena.ofShared(), maxRows, ctx);
    }

    /** Native bytes a State of this context and block size allocates (KV cache + activations + scratch). */
    public long stateBytes(int context, int maxBlock) {
        return MemoryLimits.stateBytes(config, context, maxBlock, pool.threads());
    }

    /** Native bytes of a {@link #newScratch} of this many rows for states of this context. */
    public long scratchBytes(int maxRows, int context) {
        return MemoryLimits.scratchBytes(config, maxRows, context, pool.threads());
    }

    /** Native bytes of a {@link #newBatchState} (its KV cache). */
    public long batchStateBytes(int context, int maxBlock) {
        return MemoryLimits.kvBytes(config, context, maxBlock);
    }

    public State newState(int context) {
        return newState(context, DEFAULT_MAX_BLOCK);
    }

    /** Receives the logits of one input position: {@code row} holds V f32 values, valid only during the call. */
    @FunctionalInterface
    public interface LogitsSink {
        void accept(int index, MemorySegment row);
    }

    /**
     * One sequence's part of a batch step: {@code tokens} fed at its state's position; logits are wanted for the
     * tokens at indexes [logitsFrom, tokens.length) (tokens.length - 1: the last only; tokens.length: none).
     */
    public record Sequence(State state, int[] tokens, int logitsFrom) {
        public Sequence {
            if (tokens.length == 0) throw new IllegalArgumentException("no tokens to feed");
            if (logitsFrom < 0 || logitsFrom > tokens.length) {
                throw new IllegalArgumentException("logitsFrom " + logitsFrom + " is outside [0, " + tokens.length + "]");
            }
        }
    }

    /** Receives the logits of token {@code index} of batch entry {@code sequence}, valid only during the call. */
    @FunctionalInterface
    public interface BatchLogitsSink {
        void accept(int sequence, int index, MemorySegment row);
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
        guarded(() -> run(s, tokens, false, (i, row) -> last[0] = row));
        return last[0];
    }

    /** Feeds {@code tokens} and hands the logits of every one of them to {@code sink}, in order. */
    public void forwardAll(State s, int[] tokens, LogitsSink sink) {
        guarded(() -> run(s, tokens, true, sink));
    }

    /**
     * One step of several sequences at once: every sequence's tokens go through the layers in one pass, each weight
     * matrix read once for all of them (one matrix-matrix product over the concatenated rows); LayerNorm, RoPE, the
     * KV cache and attention stay per sequence, at its own position. Each sequence gets the logits it would get
     * alone (to rounding: a row's dot products may be summed in another order by a GEMM of more rows).
     * Sequences must have distinct states made by {@link #newBatchState} or {@link #newState}, at most their
     * state's maxBlock tokens each, at most {@code scratch.maxRows()} rows in all. Logits go to {@code sink} in
     * batch order, views into the scratch valid during the call. Every input is checked before any work.
     */
    public void forward(Scratch scratch, List<Sequence> batch, BatchLogitsSink sink) {
        if (scratch.owner() != this) {
            throw new IllegalArgumentException("this scratch was made by another model");
        }
        int rows = 0;
        java.util.Set<State> seen = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        for (Sequence seq : batch) {
            State s = seq.state();
            checkOwner(s);
            if (!seen.add(s)) throw new IllegalArgumentException("a state appears twice in one batch");
            if (seq.tokens().length > s.maxBlock) {
                throw new IllegalArgumentException(seq.tokens().length + " tokens in one step exceed the state's block of " + s.maxBlock);
            }
            if (s.maxCapacity > scratch.scoresCapacity) {
                throw new IllegalArgumentException("a state of " + s.maxCapacity + " KV slots needs a scratch for that many (has "
                        + scratch.scoresCapacity + ")");
            }
            checkTokens(s, seq.tokens());
            rows += seq.tokens().length;
        }
        if (rows > scratch.maxRows) {
            throw new IllegalArgumentException(rows + " rows exceed the scratch's " + scratch.maxRows);
        }
        if (batch.isEmpty()) return;
        guarded(() -> {
            ForwardProfile p = profile;
            if (p != null) p.countPass();
            step(scratch, batch, sink, p);
            checkpoint.checkIntact();
        });
    }

    /** One sequence through the batched path, in blocks of the state's maxBlock. */
    private void run(State s, int[] tokens, boolean allLogits, LogitsSink sink) {
        checkOwner(s);
        if (s.scratch == null) {
            throw new IllegalArgumentException("this state has no activations of its own: step it with forward(Scratch, ...)");
        }
        checkTokens(s, tokens);
        ForwardProfile p = profile;
        if (p != null) p.countPass();
        for (int start = 0; start < tokens.length; start += s.maxBlock) {
            int n = Math.min(s.maxBlock, tokens.length - start);
            boolean lastBlock = start + n == tokens.length;
            int logitsFrom = allLogits ? 0 : lastBlock ? n - 1 : n;
            int offset = start;
            step(s.scratch, List.of(new Sequence(s, Arrays.copyOfRange(tokens, start, start + n), logitsFrom)),
                    (seq, i, row) -> sink.accept(offset + i, row), p);
            checkpoint.checkIntact(); // a weight file truncated during the block: its lost pages read as zeros
        }
        checkpoint.checkIntact();
    }

    /** Runs {@code pass}, naming the weight file when the JVM reports a read of a lost mapped page (no native guard). */
    private void guarded(Runnable pass) {
        try {
            pass.run();
        } catch (InternalError e) {
            checkpoint.verifyUnchanged(); // throws the one-line error if a file changed; else this is another error
            throw e;
        }
    }

    private void checkOwner(State s) {
        if (s.owner() != this) {
            throw new IllegalArgumentException("this state was made by another model");
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

    /**
     * One pass of every layer over the batch's rows (sequence after sequence, each at its state's position), then
     * the logits the sequences want; advances every state's position.
     */
    private void step(Scratch sc, List<Sequence> batch, BatchLogitsSink sink, ForwardProfile p) {
        ModelConfig c = config;
        int d = c.hiddenSize(), heads = c.numHeads(), kvHeads = c.numKvHeads();
        int hd = c.headDim(), qd = c.qDim(), kvd = c.kvDim();
        int count = batch.size();
        int[] firstRow = new int[count + 1]; // sequence e owns rows [firstRow[e], firstRow[e + 1])
        for (int e = 0; e < count; e++) firstRow[e + 1] = firstRow[e] + batch.get(e).tokens().length;
        int n = firstRow[count];
        long t0 = p == null ? 0 : System.nanoTime();

        // x = embed_tokens(ids). Cohere: no embedding scaling.
        for (int e = 0; e < count; e++) {
            int[] tokens = batch.get(e).tokens();
            for (int t = 0; t < tokens.length; t++) {
                kernels.embed(embed.type(), embed.data(), tokens[t], d, sc.x.asSlice((long) (firstRow[e] + t) * d * Float.BYTES));
            }
        }
        ropeTables(sc, batch, firstRow);
        t0 = lap(p, ForwardProfile.Op.EMBED, t0);

        for (int l = 0; l < layers.length; l++) {
            Layer layer = layers[l];
            // h = input_layernorm(x): fp32 LayerNorm with mean subtraction and no bias (not RMSNorm)
            kernels.layerNorm(sc.x, layer.norm, sc.xb, n, d, c.layerNormEps());
            t0 = lap(p, ForwardProfile.Op.LAYERNORM, t0);

            // q, k, v = h Wq^T, h Wk^T, h Wv^T   [n, H*hd], [n, KV*hd], [n, KV*hd]
            // and, on the same h (Cohere's parallel block), gate = silu(h Wgate^T) * (h Wup^T)   [n, I]
            projectionsIn(layer, sc, n);
            t0 = lap(p, ForwardProfile.Op.PROJECTIONS_IN, t0);
            if (layer.sliding) {
                // Cohere2: RoPE (interleaved pairs 2i, 2i+1) on sliding layers only; global layers use no positions (NoPE)
                kernels.ropeInterleaved(sc.q, n, heads, hd, 0, sc.cos, sc.sin);
                kernels.ropeInterleaved(sc.k, n, kvHeads, hd, 0, sc.cos, sc.sin);
                t0 = lap(p, ForwardProfile.Op.ROPE, t0);
            }
            // Write each sequence's keys and values into its cache (slot = position % C: a ring on sliding layers)
            for (int e = 0; e < count; e++) {
                State s = batch.get(e).state();
                int cap = s.capacity[l];
                for (int r = firstRow[e]; r < firstRow[e + 1]; r++) {
                    long slot = (s.position + r - firstRow[e]) % cap;
                    MemorySegment.copy(sc.k, (long) r * kvd * Float.BYTES, s.keys[l], slot * kvd * Float.BYTES, (long) kvd * Float.BYTES);
                    MemorySegment.copy(sc.v, (long) r * kvd * Float.BYTES, s.values[l], slot * kvd * Float.BYTES, (long) kvd * Float.BYTES);
                }
            }
            t0 = lap(p, ForwardProfile.Op.KV_WRITE, t0);
            // att = softmax(q k^T * hd^-0.5 + mask) v, f32; sliding layers see q - window < k <= q, global k <= q; GQA.
            // One job over every sequence's (row, head) items; each item reads its own sequence's cache.
            int window = layer.sliding ? c.slidingWindow() : 0;
            float scale = (float) (1.0 / Math.sqrt(hd));
            int layerIndex = l;
            pool.forRange(n * heads, 1, (worker, from, to) -> {
                MemorySegment scores = sc.scores.asSlice((long) worker * sc.scoresStride * Float.BYTES, (long) sc.scoresStride * Float.BYTES);
                for (int e = 0; e < count; e++) {
                    int first = firstRow[e] * heads, end = firstRow[e + 1] * heads;
                    int a = Math.max(from, first), b = Math.min(to, end);
                    if (a >= b) continue;
                    State s = batch.get(e).state();
                    long qOffset = (long) firstRow[e] * qd * Float.BYTES;
                    kernels.attention(sc.q.asSlice(qOffset), s.keys[layerIndex], s.values[layerIndex], sc.att.asSlice(qOffset),
                            firstRow[e + 1] - firstRow[e], s.position, heads, kvHeads, hd, s.capacity[layerIndex], window, scale,
                            scores, a - first, b - first);
                }
            });
            t0 = lap(p, ForwardProfile.Op.ATTENTION, t0);

            // attn(h) = o_proj(att), mlp(h) = down_proj(gate); Cohere: parallel block, x = x + attn(h) + mlp(h)
            projectionsOut(layer, sc, n);
            t0 = lap(p, ForwardProfile.Op.PROJECTIONS_OUT, t0);
        }
        for (int e = 0; e < count; e++) {
            batch.get(e).state().position += firstRow[e + 1] - firstRow[e];
        }
        head(sc, batch, firstRow, sink, p);
    }

    /**
     * The logits the sequences want: model.norm, then h . head^T * logit_scale, HEAD_ROWS rows at a time. The wanted
     * rows are gathered into xb (free once the layers are done) so one product serves several sequences.
     */
    private void head(Scratch sc, List<Sequence> batch, int[] firstRow, BatchLogitsSink sink, ForwardProfile p) {
        int d = config.hiddenSize();
        int[] fromSequence = new int[HEAD_ROWS], fromIndex = new int[HEAD_ROWS]; // where each gathered row comes from
        int gathered = 0;
        for (int e = 0; e < batch.size(); e++) {
            Sequence seq = batch.get(e);
            for (int i = seq.logitsFrom(); i < seq.tokens().length; i++) {
                if (gathered == HEAD_ROWS) {
                    headRows(sc, gathered, fromSequence, fromIndex, sink, p);
                    gathered = 0;
                }
                MemorySegment.copy(sc.x, (long) (firstRow[e] + i) * d * Float.BYTES, sc.xb, (long) gathered * d * Float.BYTES,
                        (long) d * Float.BYTES);
                fromSequence[gathered] = e;
                fromIndex[gathered] = i;
                gathered++;
            }
        }
        if (gathered > 0) headRows(sc, gathered, fromSequence, fromIndex, sink, p);
    }

    /** Logits of the first {@code rows} rows of xb (final hidden states), handed to the sink. */
    private void headRows(Scratch sc, int rows, int[] fromSequence, int[] fromIndex, BatchLogitsSink sink, ForwardProfile p) {
        int d = config.hiddenSize(), vocab = config.vocabSize();
        float logitScale = config.logitScale();
        long t0 = p == null ? 0 : System.nanoTime();
        kernels.layerNorm(sc.xb, finalNorm, sc.xb, rows, d, config.layerNormEps());
        t0 = lap(p, ForwardProfile.Op.HEAD_NORM, t0);
        matmul(head, sc.xb, sc.logits, rows);
        t0 = lap(p, ForwardProfile.Op.HEAD, t0);
        long total = logitScale == 1.0f ? 0 : (long) rows * vocab; // x * 1.0f == x: Tiny Aya skips the pass
        for (long i = 0; i < total; i++) {
            // Cohere: logits are scaled by logit_scale (0.0625 by default, 1.0 in Tiny Aya)
            sc.logits.setAtIndex(ValueLayout.JAVA_FLOAT, i, sc.logits.getAtIndex(ValueLayout.JAVA_FLOAT, i) * logitScale);
        }
        lap(p, ForwardProfile.Op.LOGIT_SCALE, t0);
        for (int r = 0; r < rows; r++) {
            sink.accept(fromSequence[r], fromIndex[r], sc.logits.asSlice((long) r * vocab * Float.BYTES, (long) vocab * Float.BYTES));
        }
    }

    /**
     * Every matrix that reads h, in one job over the pool: q, k, v = h Wq^T, h Wk^T, h Wv^T and
     * gate = silu(h Wgate^T) * (h Wup^T). Their rows are split as one range [q | k | v | (gate, up) pairs], so the
     * threads synchronize once instead of twice per layer (decode is ~180 such hand-offs per token). A gate row and
     * its up row count as two rows and always go to the same piece, whose thread applies SwiGLU to them.
     * Each output row is one kernel call's dot products whichever thread runs it: the split never changes a bit.
     */
    private void projectionsIn(Layer layer, Scratch sc, int n) {
        int qRows = layer.wq.rows(), kRows = layer.wk.rows(), vRows = layer.wv.rows(), ff = layer.wGate.rows();
        int qkvRows = qRows + kRows + vRows;
        int rows = qkvRows + 2 * ff;
        try (var h = share(sc.xb, n, layer.wq, layer.wk, layer.wv, layer.wGate, layer.wUp)) {
            pool.forPieces(rows, pieceRows(rows, 8, n), (worker, from, to) -> {
                rowSlice(layer.wq, sc.xb, sc.q, n, from, to, 0);
                rowSlice(layer.wk, sc.xb, sc.k, n, from, to, qRows);
                rowSlice(layer.wv, sc.xb, sc.v, n, from, to, qRows + kRows);
                // pair index j covers stacked rows qkvRows + 2j and + 2j + 1; floor on both ends partitions [0, ff)
                int ffFrom = Math.max(from - qkvRows, 0) / 2, ffTo = Math.max(to - qkvRows, 0) / 2;
                if (ffFrom < ffTo) {
                    product(layer.wGate, sc.xb, sc.gate, n, ff, ffFrom, ffTo);
                    product(layer.wUp, sc.xb, sc.up, n, ff, ffFrom, ffTo);
                    for (int t = 0; t < n; t++) {
                        kernels.swiglu(sc.gate, sc.up, (long) t * ff + ffFrom, (long) t * ff + ffTo);
                    }
                }
            });
        }
    }

    /**
     * attOut = att Wo^T, mlpOut = gate Wdown^T and x += attOut + mlpOut, in one job: both matrices have D rows, so
     * each piece is the same slice of D of both, added to the residual stream by the thread that computed it.
     */
    private void projectionsOut(Layer layer, Scratch sc, int n) {
        Matrix wo = layer.wo, down = layer.wDown;
        int d = wo.rows();
        try (var a = share(sc.att, n, wo); var g = share(sc.gate, n, down)) {
            pool.forPieces(d, pieceRows(d, 4, n), (worker, from, to) -> {
                product(wo, sc.att, sc.attOut, n, d, from, to);
                product(down, sc.gate, sc.mlpOut, n, d, from, to);
                for (int t = 0; t < n; t++) {
                    residual(sc.x, sc.attOut, sc.mlpOut, (long) t * d + from, (long) t * d + to);
                }
            });
        }
    }

    /**
     * x [tokens, ws[0].cols()] prepared once for the products of the next job that read it with the matrices ws (the
     * Java GEMM's transposed tiles, the 4-bit GEMM's quantized x, or both: each piece's call would make them again;
     * see {@link Kernels#shareInput}); the bf16 rounding is asked for by ws[0]'s type.
     */
    private Kernels.SharedInput share(MemorySegment x, int tokens, Matrix... ws) {
        if (tokens <= FEW_TOKENS) {
            return Kernels.SharedInput.NONE; // a decode step: its hand-off would cost more than a few tokens' tiles
        }
        Matrix w = ws[0];
        PackedMatrix[] readers = new PackedMatrix[ws.length];
        for (int i = 0; i < ws.length; i++) readers[i] = ws[i].packed();
        return kernels.shareInput(x, tokens, w.cols(), activations == Activations.BF16 && w.type() == WeightType.BF16,
                pool, readers);
    }

    /** The part of rows [from, to) of a stacked range that falls in matrix w, which starts at row {@code offset}. */
    private void rowSlice(Matrix w, MemorySegment x, MemorySegment out, int tokens, int from, int to, int offset) {
        int start = Math.max(from - offset, 0), end = Math.min(to - offset, w.rows());
        if (start < end) {
            product(w, x, out, tokens, w.rows(), start, end);
        }
    }

    /** out[t, :] = w x[t, :] for t < tokens, rows split over the pool (tokens > 1 is matrix-matrix work). */
    private void matmul(Matrix w, MemorySegment x, MemorySegment out, int tokens) {
        int rows = w.rows();
        pool.forPieces(rows, pieceRows(rows, 4, tokens), (worker, from, to) -> product(w, x, out, tokens, rows, from, to));
    }

    /**
     * Rows per piece of a job over {@code rows} rows and {@code tokens} tokens, a multiple of {@code align}:
     * PIECES_PER_THREAD pieces per thread for a decode step (up to {@link #FEW_TOKENS} tokens: one token, or a batch of
     * decoding sequences, where the kernels stream the weights once and a late thread would leave the other idle),
     * the backend's {@link Kernels#prefillPiecesPerThread} for prefill blocks (fewer pieces would leave a thread idle
     * whenever the other is descheduled; more cost what each call prepares for itself).
     */
    private int pieceRows(int rows, int align, int tokens) {
        int pieces = pool.threads() * (tokens <= FEW_TOKENS ? PIECES_PER_THREAD : kernels.prefillPiecesPerThread());
        long blocks = ((long) rows + align - 1) / align;
        return (int) ((blocks + pieces - 1) / pieces * align);
    }

    /** Rows [from, to) of x w^T; with --activations bf16, x is rounded to bf16 for bf16 weights (prefill and decode). */
    private void product(Matrix w, MemorySegment x, MemorySegment out, int tokens, int outStride, int from, int to) {
        if (activations == Activations.BF16 && w.type() == WeightType.BF16) {
            kernels.matmulBf16Activations(w.data(), x, out, tokens, w.cols(), outStride, from, to);
        } else if (w.packed() != null) {
            kernels.matmul(w.packed(), x, out, tokens, outStride, from, to);
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
     * cos/sin [n, hd/2], row r at its own sequence's position, computed in f32 like transformers:
     * inv_freq[i] = 1 / theta^(2i/hd), angle = pos * inv_freq[i].
     */
    private void ropeTables(Scratch sc, List<Sequence> batch, int[] firstRow) {
        int hd = config.headDim(), half = hd / 2;
        float theta = (float) config.ropeTheta();
        for (int i = 0; i < half; i++) {
            float invFreq = 1.0f / (float) Math.pow(theta, (float) (2 * i) / hd);
            for (int e = 0; e < batch.size(); e++) {
                int pos0 = batch.get(e).state().position;
                for (int r = firstRow[e]; r < firstRow[e + 1]; r++) {
                    float angle = (float) (pos0 + r - firstRow[e]) * invFreq;
                    sc.cos.setAtIndex(ValueLayout.JAVA_FLOAT, (long) r * half + i, (float) Math.cos(angle));
                    sc.sin.setAtIndex(ValueLayout.JAVA_FLOAT, (long) r * half + i, (float) Math.sin(angle));
                }
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
