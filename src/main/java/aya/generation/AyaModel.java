package aya.generation;

import aya.AyaException;
import aya.config.GenerationConfig;
import aya.config.GgufMetadata;
import aya.config.ModelConfig;
import aya.hub.HubSettings;
import aya.hub.ModelLocator;
import aya.kernels.Backend;
import aya.kernels.Parallel;
import aya.kernels.WeightType;
import aya.model.Activations;
import aya.model.AyaForward;
import aya.sampling.SamplerSettings;
import aya.tokenizer.ChatTemplate;
import aya.tokenizer.GgufTokenizer;
import aya.tokenizer.Tokenizer;
import aya.weights.Checkpoint;
import aya.weights.GgufFile;
import aya.weights.Tensor;

import java.io.PrintStream;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;

/**
 * A loaded Tiny Aya: weights (memory-mapped, shared), tokenizer, chat template and generation defaults.
 * Open one {@link Session} per conversation; sessions may run at the same time from different threads (each has
 * its own KV cache; kernel calls take turns on the model's thread pool). Closing the model unmaps the weights:
 * close its sessions first.
 *
 * <pre>{@code
 * try (AyaModel model = AyaModel.load("CohereLabs/tiny-aya-global");   // a hub repo id or a local directory
 *      Session session = model.newSession()) {
 *     GenerationSettings settings = model.settings().temperature(0).maxTokens(64).build();
 *     session.chat(List.of(Message.user("Hi!")), settings, TokenListener.printTo(System.out));
 * }
 * }</pre>
 */
public final class AyaModel implements AutoCloseable {

    /** Default context when none is asked for: the model's limit, capped (KV memory grows with it). */
    public static final int DEFAULT_CONTEXT_CAP = 8192;
    /** The model used when none is named. */
    public static final String DEFAULT_MODEL = "CohereLabs/tiny-aya-global";
    /** End tokens of Cohere chat models, looked up by text (absent ones are ignored). */
    static final List<String> END_TOKEN_TEXTS = List.of("<|END_OF_TURN_TOKEN|>", "<|END_RESPONSE|>");

    /**
     * How to load: start from {@link #DEFAULT} and change what differs, e.g.
     * {@code Options.DEFAULT.withBackend("java").withThreads(2)}.
     *
     * @param backend kernels: "java", "native" or "auto"
     * @param threads worker threads (0 = the cores available)
     * @param log     where hub downloads and load progress go (null = silent)
     * @param quant   quantize the weight matrices at load to Q8_0 or Q4_0 (cached next to the model), or null to
     *                run them in the checkpoint's own type
     * @param activations precision of the activations entering bf16 weight matrices, prefill and decode (F32 by default;
     *                BF16 is the opt-in faster path on CPUs with AVX512_BF16, see {@link Activations#BF16})
     */
    public record Options(String backend, int threads, PrintStream log, WeightType quant, Activations activations) {
        /** Backend auto, every core, progress on stderr, weights as stored, f32 activations. */
        public static final Options DEFAULT = new Options("auto", 0, System.err);

        /** Checks the values; prefer {@link #DEFAULT} and the {@code with...} methods. */
        public Options {
            if (threads < 0 || threads > 1024) throw new AyaException("threads must be between 1 and 1024, got " + threads);
            if (quant != null && !quant.quantized()) throw new AyaException("quant must be Q8_0 or Q4_0, got " + quant);
            if (activations == null) throw new AyaException("activations must be F32 or BF16, got null");
        }

        /** The same, in f32 activations. */
        public Options(String backend, int threads, PrintStream log, WeightType quant) {
            this(backend, threads, log, quant, Activations.F32);
        }

        /** The same, with the weights as stored. */
        public Options(String backend, int threads, PrintStream log) {
            this(backend, threads, log, null);
        }

        /** These options with kernels "java", "native" or "auto" (native, else java with a warning). */
        public Options withBackend(String backend) {
            return new Options(backend, threads, log, quant, activations);
        }

        /** These options with {@code threads} worker threads (0 = the cores available). */
        public Options withThreads(int threads) {
            return new Options(backend, threads, log, quant, activations);
        }

        /** These options with download and load progress going to {@code log} (null = silent). */
        public Options withLog(PrintStream log) {
            return new Options(backend, threads, log, quant, activations);
        }

        /** These options quantizing the weight matrices at load ({@code WeightType.Q8_0} or {@code Q4_0}; null = as stored). */
        public Options withQuant(WeightType quant) {
            return new Options(backend, threads, log, quant, activations);
        }

        /** These options with the given prefill activations ({@link Activations#BF16} is the opt-in faster path). */
        public Options withActivations(Activations activations) {
            return new Options(backend, threads, log, quant, activations);
        }
    }

    private final Path directory;
    private final AyaForward forward;
    private final Tokenizer tokenizer;            // null when the directory has no tokenizer.json
    private final ChatTemplate chatTemplate;      // null for models without one (e.g. tiny-aya-base)
    private final GenerationConfig generationConfig;
    private final int[] endTokens;

    private AyaModel(Path directory, AyaForward forward, Tokenizer tokenizer, ChatTemplate chatTemplate,
                     GenerationConfig generationConfig) {
        this.directory = directory;
        this.forward = forward;
        this.tokenizer = tokenizer;
        this.chatTemplate = chatTemplate;
        this.generationConfig = generationConfig;
        int[] ends = generationConfig.eosTokenIds().clone();
        if (tokenizer != null) {
            for (String text : END_TOKEN_TEXTS) {
                int id = tokenizer.tokenId(text);
                if (id >= 0) {
                    ends = Arrays.copyOf(ends, ends.length + 1);
                    ends[ends.length - 1] = id;
                }
            }
        }
        this.endTokens = Arrays.stream(ends).distinct().toArray();
    }

    /** Loads a local checkpoint directory, or a hub repo id, with {@link Options#DEFAULT}. */
    public static AyaModel load(String modelOrRepoId) {
        return load(modelOrRepoId, Options.DEFAULT);
    }

    /** Loads a local checkpoint directory, or a hub repo id (found in the HF cache, else downloaded). */
    public static AyaModel load(String modelOrRepoId, Options options) {
        return load(modelOrRepoId, options, NO_CHECK);
    }

    /**
     * A check on the text side of a model, run once tokenizer.json and the chat template are read and before the
     * weights are mapped: e.g. refusing a prompt that cannot fit the context without first loading gigabytes.
     * {@code tokenizer} is null when the directory has no tokenizer.json.
     */
    @FunctionalInterface
    public interface BeforeWeights {
        void check(Tokenizer tokenizer, Optional<ChatTemplate> template);
    }

    private static final BeforeWeights NO_CHECK = (tokenizer, template) -> { };

    /** Like {@link #load(String, Options)}, running {@code check} before the weights are mapped. */
    public static AyaModel load(String modelOrRepoId, Options options, BeforeWeights check) {
        ModelLocator locator = new ModelLocator(HubSettings.fromEnvironment(), options.log(),
                options.log() != null && LoadProgress.stderrIsTerminal());
        return load(locator.resolve(modelOrRepoId), options, new LoadProgress(options.log(),
                options.log() != null && LoadProgress.stderrIsTerminal(), LoadProgress.DEFAULT_THRESHOLD_NANOS), check);
    }

    /** The same with a given hub client (e.g. another endpoint, cache or token than the environment's). */
    public static AyaModel load(String modelOrRepoId, Options options, ModelLocator locator) {
        return load(locator.resolve(modelOrRepoId), options);
    }

    /** Loads a local checkpoint directory with {@link Options#DEFAULT}. */
    public static AyaModel load(Path dir) {
        return load(dir, Options.DEFAULT);
    }

    /** Loads a local checkpoint directory. */
    public static AyaModel load(Path dir, Options options) {
        return load(dir, options, new LoadProgress(options.log(), options.log() != null && LoadProgress.stderrIsTerminal(),
                LoadProgress.DEFAULT_THRESHOLD_NANOS));
    }

    static AyaModel load(Path dir, Options options, LoadProgress progress) {
        return load(dir, options, progress, NO_CHECK);
    }

    static AyaModel load(Path dir, Options options, LoadProgress progress, BeforeWeights check) {
        if (GgufFile.looksLikeGguf(dir)) {
            return loadGguf(dir, options, progress, check);
        }
        if (!Files.isDirectory(dir)) {
            throw new AyaException(dir + ": not a model directory (expected config.json, *.safetensors, tokenizer.json) or a GGUF file");
        }
        int threads = options.threads() == 0 ? Parallel.defaultThreads() : options.threads();
        // Tokenizer and template first: they are quick to read and fail fast on a broken file.
        Path tokenizerFile = dir.resolve("tokenizer.json");
        Tokenizer tokenizer = Files.exists(tokenizerFile) ? Tokenizer.load(tokenizerFile) : null;
        ChatTemplate template = tokenizer == null ? null : ChatTemplate.load(dir, tokenizer).orElse(null);
        check.check(tokenizer, Optional.ofNullable(template));
        AyaForward forward = AyaForward.load(dir, Backend.open(options.backend()), threads, options.quant()); // closes the kernels if it fails
        return finish(dir, forward, tokenizer, template, tokenizerFile.toString(), options, progress);
    }

    /**
     * Loads a GGUF file: config, tokenizer and chat template come from its metadata (nothing else is read beside
     * it); mapping it reads no weights yet, so the check still runs before they are paged in.
     */
    private static AyaModel loadGguf(Path file, Options options, LoadProgress progress, BeforeWeights check) {
        if (options.quant() != null) {
            throw new AyaException(file + ": --quant converts safetensors checkpoints; a GGUF file runs in the types it holds"
                    + " (quantize it with llama-quantize instead)");
        }
        int threads = options.threads() == 0 ? Parallel.defaultThreads() : options.threads();
        Checkpoint checkpoint = Checkpoint.openGguf(file);
        ModelConfig config;
        Tokenizer tokenizer;
        ChatTemplate template;
        try {
            config = AyaForward.ggufConfig(checkpoint);
            GgufMetadata metadata = new GgufMetadata(file.toString(), checkpoint.gguf().metadata());
            tokenizer = GgufTokenizer.tokenizer(metadata);
            template = GgufTokenizer.chatTemplate(metadata, tokenizer).orElse(null);
            check.check(tokenizer, Optional.ofNullable(template));
        } catch (RuntimeException e) {
            checkpoint.close();
            throw e;
        }
        AyaForward forward = AyaForward.load(checkpoint, config, Backend.open(options.backend()), threads); // closes both if it fails
        return finish(file, forward, tokenizer, template, file.toString(), options, progress);
    }

    /** Reads the weights in and checks the tokenizer against them; closes {@code forward} if that fails. */
    private static AyaModel finish(Path source, AyaForward forward, Tokenizer tokenizer, ChatTemplate template, String tokenizerSource,
                                   Options options, LoadProgress progress) {
        try {
            forward.activations(options.activations());
            readIn(forward, progress);
            GenerationConfig gen = Files.isDirectory(source) ? GenerationConfig.load(source, forward.config())
                    : GenerationConfig.fromModel(forward.config()); // a GGUF carries no sampling advice
            if (tokenizer != null && tokenizer.vocabSize() > forward.config().vocabSize()) {
                throw new AyaException(tokenizerSource + ": defines " + tokenizer.vocabSize() + " ids but the model has only "
                        + forward.config().vocabSize() + " rows (vocab_size): tokenizer and weights do not match");
            }
            long packed = forward.packedBytes(); // the backend's own copies of some matrices, made at load
            progress.done("loaded " + source + " (" + LoadProgress.bytes(forward.weightBytes())
                    + (packed > 0 ? ", +" + LoadProgress.bytes(packed) + " packed by " + options.backend() : "") + ", "
                    + forward.threads() + " threads)");
            return new AyaModel(source, forward, tokenizer, template, gen);
        } catch (RuntimeException e) {
            forward.close();
            throw e;
        }
    }

    /**
     * Reads every weight page in from disk now, tensor by tensor with progress, rather than during the first
     * token (mapped files are otherwise read lazily: the first forward pass would look like a hang).
     */
    private static void readIn(AyaForward forward, LoadProgress progress) {
        long total = forward.weightBytes(), done = 0;
        for (Tensor t : forward.tensors().values()) {
            MemorySegment data = t.data();
            if (data.isMapped()) data.load();
            done += data.byteSize();
            progress.update("reading weights", done, total);
        }
    }

    public Path directory() {
        return directory;
    }

    public ModelConfig config() {
        return forward.config();
    }

    public GenerationConfig generationConfig() {
        return generationConfig;
    }

    /** True when the directory has a tokenizer.json (text in and out); without one only ids work. */
    public boolean hasTokenizer() {
        return tokenizer != null;
    }

    /** The tokenizer; an AyaException if the model directory has none. */
    public Tokenizer tokenizer() {
        if (tokenizer == null) throw new AyaException(directory + ": no tokenizer.json: only token ids can be used with this model");
        return tokenizer;
    }

    /** The chat template (chat_template.jinja or tokenizer_config.json), empty for base models. */
    public Optional<ChatTemplate> chatTemplate() {
        return Optional.ofNullable(chatTemplate);
    }

    /** Ids that end a generation: generation_config's eos ids, END_OF_TURN and END_RESPONSE when the tokenizer has them. */
    public int[] endTokens() {
        return endTokens.clone();
    }

    public boolean isEndToken(int id) {
        for (int e : endTokens) if (e == id) return true;
        return false;
    }

    /** Ids the sampler may choose: the tokenizer's (the model's output rows may be more). */
    int samplingVocab() {
        return tokenizer != null ? tokenizer.vocabSize() : forward.config().vocabSize();
    }

    /** The kernel backend in use (java or native). */
    public String backendName() {
        return forward.kernels().name();
    }

    public int threads() {
        return forward.threads();
    }

    AyaForward forward() {
        return forward;
    }

    /**
     * A settings builder with this model's generation_config.json filled in (llama.cpp's defaults where it says
     * nothing): {@code model.settings().temperature(0).seed(42).maxTokens(256).build()}.
     */
    public GenerationSettings.Builder settings() {
        return GenerationSettings.builder(generationConfig);
    }

    /** Sampling settings: the given overrides, else generation_config.json, else llama.cpp's defaults. */
    public SamplerSettings samplerSettings(SamplerSettings.Overrides overrides) {
        return SamplerSettings.resolve(overrides, generationConfig);
    }

    /** The default context: max_position_embeddings capped at {@value #DEFAULT_CONTEXT_CAP}. */
    public int defaultContext() {
        return Math.min(forward.config().maxPositionEmbeddings(), DEFAULT_CONTEXT_CAP);
    }

    /** A session with the default context. */
    public Session newSession() {
        return newSession(defaultContext());
    }

    /**
     * A session holding up to {@code context} tokens (prompt + generated); its KV cache is allocated now.
     * A context beyond max_position_embeddings, or a cache that cannot fit in memory, is an AyaException.
     */
    public Session newSession(int context) {
        ModelConfig c = forward.config();
        if (context < 1) throw new AyaException("the context must be at least 1 token, got " + context);
        if (context > c.maxPositionEmbeddings()) {
            throw new AyaException("a context of " + context + " tokens is more than the model's max_position_embeddings ("
                    + c.maxPositionEmbeddings() + ")");
        }
        try {
            return new Session(this, forward.newState(context)); // refuses a KV cache that would not fit in RAM
        } catch (OutOfMemoryError e) {
            throw new AyaException("could not allocate " + LoadProgress.bytes(kvCacheBytes(context)) + " of KV cache for a context of "
                    + context + " tokens: use a smaller --context");
        }
    }

    /** KV-cache bytes of a session with this context (global layers grow with it; sliding rings are fixed). */
    public long kvCacheBytes(int context) {
        int block = Math.min(AyaForward.DEFAULT_MAX_BLOCK, context);
        return forward.kvBytesPerToken() * context + forward.slidingKvBytes(context, block);
    }

    /** Unmaps the weights and stops the thread pool; sessions must be closed first. */
    @Override
    public void close() {
        forward.close();
    }
}
