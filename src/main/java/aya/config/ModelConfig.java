package aya.config;

import aya.AyaException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The model's shape, read from a Hugging Face {@code config.json} of a {@code Cohere2ForCausalLM}.
 * Absent fields take transformers' {@code Cohere2Config} defaults, so a config that transformers loads
 * loads here the same way (e.g. logit_scale 0.0625 and tied embeddings when absent).
 *
 * @param vocabSize             rows of the embedding table and of the output head (may exceed the tokenizer's ids)
 * @param hiddenSize            model width D
 * @param intermediateSize      SwiGLU width I
 * @param numLayers             decoder layers
 * @param numHeads              query heads
 * @param numKvHeads            key/value heads (GQA: numHeads is a multiple)
 * @param headDim               per-head width ({@code head_dim}, else hiddenSize / numHeads); numHeads x headDim may differ from hiddenSize
 * @param layerNormEps          LayerNorm epsilon
 * @param ropeTheta             RoPE base (sliding layers only)
 * @param slidingWindow         keys a sliding layer's query sees, including itself
 * @param slidingLayers         slidingLayers[i]: layer i is sliding (RoPE + window), else global (NoPE, full causal)
 * @param logitScale            logits = h . embed^T * logitScale
 * @param tieWordEmbeddings     output head is the embedding table
 * @param maxPositionEmbeddings longest context the model was made for
 * @param bosTokenId            beginning-of-sequence id (or -1)
 * @param eosTokenIds           end-of-sequence ids (may be empty)
 * @param padTokenId            padding id (or -1)
 */
public record ModelConfig(
        int vocabSize,
        int hiddenSize,
        int intermediateSize,
        int numLayers,
        int numHeads,
        int numKvHeads,
        int headDim,
        float layerNormEps,
        double ropeTheta,
        int slidingWindow,
        boolean[] slidingLayers,
        float logitScale,
        boolean tieWordEmbeddings,
        int maxPositionEmbeddings,
        int bosTokenId,
        int[] eosTokenIds,
        int padTokenId) {

    public static final String ARCHITECTURE = "Cohere2ForCausalLM";
    public static final String MODEL_TYPE = "cohere2";

    public boolean isSliding(int layer) {
        return slidingLayers[layer];
    }

    public int qDim() {
        return numHeads * headDim;
    }

    public int kvDim() {
        return numKvHeads * headDim;
    }

    /** Reads {@code dir/config.json}. */
    public static ModelConfig load(Path dir) {
        Path file = dir.resolve("config.json");
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(Files.readString(file));
        } catch (NoSuchFileException e) {
            throw new AyaException(file + ": missing (a model directory needs config.json)");
        } catch (IOException e) {
            throw new AyaException(file + ": not valid JSON: " + firstLine(e.getMessage()));
        }
        if (root == null || !root.isObject()) {
            throw new AyaException(file + ": not a JSON object");
        }
        return parse(root, file.toString());
    }

    /** Builds a config from parsed JSON; {@code where} names the source in error messages. */
    public static ModelConfig parse(JsonNode root, String where) {
        Fields f = new Fields(root, where);
        JsonNode archs = root.get("architectures");
        if (archs != null && !archs.isNull()) {
            if (!archs.isArray() || archs.isEmpty()) {
                throw new AyaException(where + ": field 'architectures' must be a non-empty list");
            }
            for (JsonNode a : archs) {
                if (!ARCHITECTURE.equals(a.asText())) {
                    throw new AyaException(where + ": field 'architectures' is " + archs + ", this engine runs only " + ARCHITECTURE);
                }
            }
        }
        String modelType = f.string("model_type", MODEL_TYPE);
        if (!MODEL_TYPE.equals(modelType)) {
            throw new AyaException(where + ": field 'model_type' is '" + modelType + "', this engine runs only '" + MODEL_TYPE + "'");
        }
        String act = f.string("hidden_act", "silu");
        if (!act.equals("silu")) {
            throw new AyaException(where + ": field 'hidden_act' is '" + act + "', only 'silu' is supported");
        }
        if (f.bool("attention_bias", false)) {
            throw new AyaException(where + ": field 'attention_bias' is true, only bias-free attention is supported");
        }
        // Defaults below are transformers' Cohere2Config defaults.
        int vocab = f.positive("vocab_size", 256000);
        int hidden = f.positive("hidden_size", 8192);
        int inter = f.positive("intermediate_size", 22528);
        int layers = f.positive("num_hidden_layers", 40);
        int heads = f.positive("num_attention_heads", 64);
        int kvHeads = root.hasNonNull("num_key_value_heads") ? f.positive("num_key_value_heads", heads) : heads;
        // transformers' Cohere2Attention uses config.head_dim when the file sets it (q_proj then has heads x head_dim rows,
        // o_proj that many columns, which need not equal hidden_size); without it, hidden_size / num_attention_heads.
        int headDim;
        if (root.hasNonNull("head_dim")) {
            headDim = f.positive("head_dim", 0);
        } else if (hidden % heads != 0) {
            throw new AyaException(where + ": field 'hidden_size' (" + hidden + ") is not a multiple of 'num_attention_heads' (" + heads
                    + ") and there is no 'head_dim' field");
        } else {
            headDim = hidden / heads;
        }
        if ((long) heads * headDim > Integer.MAX_VALUE) {
            throw new AyaException(where + ": num_attention_heads x head_dim (" + heads + " x " + headDim + ") is too large");
        }
        if (heads % kvHeads != 0) {
            throw new AyaException(where + ": field 'num_attention_heads' (" + heads + ") is not a multiple of 'num_key_value_heads' (" + kvHeads + ")");
        }
        if (headDim % 2 != 0) {
            throw new AyaException(where + ": field 'head_dim' (" + headDim + ") must be even for rotary embeddings");
        }
        float eps = (float) f.number("layer_norm_eps", 1e-5);
        if (!(eps > 0)) {
            throw new AyaException(where + ": field 'layer_norm_eps' must be positive, got " + eps);
        }
        double theta = ropeTheta(root, f, where);
        boolean[] sliding = layerTypes(root, f, where, layers);
        int window = f.positive("sliding_window", 4096);
        if (root.has("sliding_window") && root.get("sliding_window").isNull()) {
            for (boolean s : sliding) {
                if (s) { // transformers refuses this too: sliding layers need a window
                    throw new AyaException(where + ": field 'sliding_window' is null but layer_types has sliding layers");
                }
            }
        }
        float logitScale = (float) f.number("logit_scale", 0.0625);
        boolean tied = f.bool("tie_word_embeddings", true);
        int maxPos = f.positive("max_position_embeddings", 8192);
        int bos = f.optionalId("bos_token_id", 5);
        int pad = f.optionalId("pad_token_id", 0);
        int[] eos = f.ids("eos_token_id", new int[] {255001});
        return new ModelConfig(vocab, hidden, inter, layers, heads, kvHeads, headDim, eps, theta, window, sliding,
                logitScale, tied, maxPos, bos, eos, pad);
    }

    /** The GGUF architecture this engine runs ({@code general.architecture}). */
    public static final String GGUF_ARCHITECTURE = "cohere2";

    /**
     * Builds a config from a GGUF file's metadata, as llama.cpp's cohere2 loader reads it: {@code cohere2.*} sizes,
     * the sliding-window schedule from {@code cohere2.attention.sliding_window_pattern} (an array of per-layer flags,
     * or a period n: layer i slides unless i % n == n - 1; period 4 when absent), the vocabulary from the token list,
     * special ids from {@code tokenizer.ggml.*}. The head is tied unless the file holds an {@code output} tensor
     * (the model checks that), so tieWordEmbeddings is true here.
     */
    public static ModelConfig fromGguf(GgufMetadata m) {
        String where = m.source();
        String arch = m.string("general.architecture");
        if (arch == null) throw new AyaException(where + ": metadata 'general.architecture' is missing");
        if (!arch.equals(GGUF_ARCHITECTURE)) {
            throw new AyaException(where + ": architecture '" + arch + "', this engine runs only '" + GGUF_ARCHITECTURE + "' (Tiny Aya)");
        }
        String p = GGUF_ARCHITECTURE + ".";
        int hidden = m.positive(p + "embedding_length");
        int inter = m.positive(p + "feed_forward_length");
        int layers = m.positive(p + "block_count");
        int heads = m.positive(p + "attention.head_count");
        int kvHeads = m.has(p + "attention.head_count_kv") ? m.positive(p + "attention.head_count_kv") : heads;
        // llama.cpp's head size: attention.key_length when the file has it, else embedding_length / head_count
        int headDim;
        if (m.has(p + "attention.key_length")) {
            headDim = m.positive(p + "attention.key_length");
        } else if (hidden % heads == 0) {
            headDim = hidden / heads;
        } else {
            throw new AyaException(where + ": " + p + "embedding_length (" + hidden + ") is not a multiple of attention.head_count (" + heads
                    + ") and there is no attention.key_length");
        }
        for (String key : new String[] {"attention.value_length", "rope.dimension_count"}) {
            if (m.has(p + key) && m.positive(p + key) != headDim) { // partial rotary or unequal k/v heads: not Tiny Aya
                throw new AyaException(where + ": " + p + key + " is " + m.positive(p + key) + ", this engine needs the head size "
                        + headDim);
            }
        }
        if ((long) heads * headDim > Integer.MAX_VALUE) {
            throw new AyaException(where + ": attention.head_count x head size (" + heads + " x " + headDim + ") is too large");
        }
        if (heads % kvHeads != 0) {
            throw new AyaException(where + ": " + p + "attention.head_count (" + heads + ") is not a multiple of attention.head_count_kv (" + kvHeads + ")");
        }
        if (headDim % 2 != 0) {
            throw new AyaException(where + ": the head size (" + headDim + ") must be even for rotary embeddings");
        }
        if (!m.has(p + "attention.layer_norm_epsilon")) throw new AyaException(where + ": metadata '" + p + "attention.layer_norm_epsilon' is missing");
        float eps = (float) m.number(p + "attention.layer_norm_epsilon", 0);
        if (!(eps > 0)) throw new AyaException(where + ": " + p + "attention.layer_norm_epsilon must be positive, got " + eps);
        String scaling = m.string(p + "rope.scaling.type");
        if (scaling != null && !scaling.equals("none")) {
            throw new AyaException(where + ": " + p + "rope.scaling.type is '" + scaling + "', only 'none' is supported");
        }
        // only the sliding layers rotate; llama.cpp gives them freq_base_swa when the file has it
        double theta = m.number(p + "rope.freq_base_swa", m.number(p + "rope.freq_base", 10000.0));
        if (!(theta > 0)) throw new AyaException(where + ": " + p + "rope.freq_base must be positive, got " + theta);
        int window = m.positive(p + "attention.sliding_window");
        if (!m.has(p + "logit_scale")) throw new AyaException(where + ": metadata '" + p + "logit_scale' is missing");
        float logitScale = (float) m.number(p + "logit_scale", 0);
        int maxPos = m.has(p + "context_length") ? m.positive(p + "context_length") : 8192;
        List<String> tokens = m.array("tokenizer.ggml.tokens", String.class);
        int vocab = tokens != null ? tokens.size() : m.positive(p + "vocab_size");
        if (vocab == 0) throw new AyaException(where + ": tokenizer.ggml.tokens is empty");
        int bos = m.integer("tokenizer.ggml.bos_token_id", -1);
        int pad = m.integer("tokenizer.ggml.padding_token_id", -1);
        int[] eos = java.util.stream.IntStream.of(m.integer("tokenizer.ggml.eos_token_id", -1), m.integer("tokenizer.ggml.eot_token_id", -1))
                .filter(id -> id >= 0).distinct().toArray();
        return new ModelConfig(vocab, hidden, inter, layers, heads, kvHeads, headDim, eps, theta, window,
                ggufSlidingLayers(m, p + "attention.sliding_window_pattern", layers), logitScale, true, maxPos, bos, eos, pad);
    }

    /** llama.cpp's load_swa_pattern(ml, 4): a per-layer bool array, or a period n (0: every layer slides). */
    private static boolean[] ggufSlidingLayers(GgufMetadata m, String key, int layers) {
        boolean[] sliding = new boolean[layers];
        if (m.values().get(key) instanceof List<?>) {
            List<Boolean> flags = m.array(key, Boolean.class);
            if (flags.size() != layers) {
                throw new AyaException(m.source() + ": " + key + " lists " + flags.size() + " layers, the model has " + layers);
            }
            for (int i = 0; i < layers; i++) sliding[i] = flags.get(i);
            return sliding;
        }
        int period = m.integer(key, 4);
        for (int i = 0; i < layers; i++) sliding[i] = period == 0 || i % period < period - 1;
        return sliding;
    }

    /** rope_theta sits top-level (older configs) or inside rope_parameters (transformers 5). */
    private static double ropeTheta(JsonNode root, Fields f, String where) {
        JsonNode params = root.get("rope_parameters");
        if (params != null && params.isObject()) {
            String type = params.path("rope_type").asText("default");
            if (!type.equals("default")) {
                throw new AyaException(where + ": field 'rope_parameters.rope_type' is '" + type + "', only 'default' is supported");
            }
            if (params.hasNonNull("rope_theta")) {
                return new Fields(params, where + " rope_parameters").number("rope_theta", 10000.0);
            }
        }
        JsonNode scaling = root.get("rope_scaling");
        if (scaling != null && scaling.isObject()) {
            String type = scaling.path("rope_type").asText(scaling.path("type").asText("default"));
            if (!type.equals("default")) {
                throw new AyaException(where + ": field 'rope_scaling' has type '" + type + "', only 'default' is supported");
            }
        }
        double theta = f.number("rope_theta", 10000.0);
        if (!(theta > 0)) {
            throw new AyaException(where + ": field 'rope_theta' must be positive, got " + theta);
        }
        return theta;
    }

    /** layer_types, or the older sliding_window_pattern p: layer i is sliding unless (i + 1) % p == 0. */
    private static boolean[] layerTypes(JsonNode root, Fields f, String where, int layers) {
        boolean[] sliding = new boolean[layers];
        JsonNode types = root.get("layer_types");
        if (types != null && !types.isNull()) {
            if (!types.isArray() || types.size() != layers) {
                throw new AyaException(where + ": field 'layer_types' must list " + layers + " entries (num_hidden_layers), got "
                        + (types.isArray() ? types.size() : types.getNodeType().toString().toLowerCase()));
            }
            for (int i = 0; i < layers; i++) {
                String t = types.get(i).asText();
                switch (t) {
                    case "sliding_attention" -> sliding[i] = true;
                    case "full_attention" -> sliding[i] = false;
                    default -> throw new AyaException(where + ": field 'layer_types' entry " + i + " is '" + t
                            + "', expected 'sliding_attention' or 'full_attention'");
                }
            }
            return sliding;
        }
        int pattern = f.positive("sliding_window_pattern", 4);
        for (int i = 0; i < layers; i++) {
            sliding[i] = (i + 1) % pattern != 0;
        }
        return sliding;
    }

    static String firstLine(String s) {
        if (s == null) return "";
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }

    /** Typed field access with one-line errors naming the field. */
    static final class Fields {
        private final JsonNode root;
        private final String where;

        Fields(JsonNode root, String where) {
            this.root = root;
            this.where = where;
        }

        private JsonNode get(String name) {
            JsonNode n = root.get(name);
            return n == null || n.isNull() ? null : n;
        }

        String string(String name, String dflt) {
            JsonNode n = get(name);
            if (n == null) return dflt;
            if (!n.isTextual()) throw new AyaException(where + ": field '" + name + "' must be a string, got " + n);
            return n.asText();
        }

        boolean bool(String name, boolean dflt) {
            JsonNode n = get(name);
            if (n == null) return dflt;
            if (!n.isBoolean()) throw new AyaException(where + ": field '" + name + "' must be true or false, got " + n);
            return n.asBoolean();
        }

        double number(String name, double dflt) {
            JsonNode n = get(name);
            if (n == null) return dflt;
            if (!n.isNumber()) throw new AyaException(where + ": field '" + name + "' must be a number, got " + n);
            return n.asDouble();
        }

        int positive(String name, int dflt) {
            JsonNode n = get(name);
            if (n == null) return dflt;
            if (!n.isIntegralNumber() || !n.canConvertToInt() || n.asInt() <= 0) {
                throw new AyaException(where + ": field '" + name + "' must be a positive integer, got " + n);
            }
            return n.asInt();
        }

        int optionalId(String name, int dflt) {
            JsonNode n = root.get(name);
            if (n == null) return dflt;
            if (n.isNull()) return -1;
            if (n.isArray() && n.size() > 0) n = n.get(0);
            if (!n.isIntegralNumber() || !n.canConvertToInt() || n.asInt() < 0) {
                throw new AyaException(where + ": field '" + name + "' must be a non-negative integer, got " + n);
            }
            return n.asInt();
        }

        /** An id or a list of ids (eos_token_id is either). */
        int[] ids(String name, int[] dflt) {
            JsonNode n = root.get(name);
            if (n == null) return dflt;
            if (n.isNull()) return new int[0];
            List<JsonNode> items = new ArrayList<>();
            if (n.isArray()) n.forEach(items::add);
            else items.add(n);
            int[] out = new int[items.size()];
            for (int i = 0; i < out.length; i++) {
                JsonNode v = items.get(i);
                if (!v.isIntegralNumber() || !v.canConvertToInt() || v.asInt() < 0) {
                    throw new AyaException(where + ": field '" + name + "' must be an id or a list of ids, got " + n);
                }
                out[i] = v.asInt();
            }
            return out;
        }
    }
}
