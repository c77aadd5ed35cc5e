package aya.tokenizer;

import aya.AyaException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A Hugging Face tokenizer.json (BPE models), giving the same ids and decodes as the HF {@code tokenizers} library.
 *
 * <p>Encoding runs HF's pipeline: added tokens are cut out of the raw text first (non-normalized ones), the rest
 * is normalized and cut on normalized added tokens, pre-tokenized into words, and each word goes through BPE;
 * with special tokens on, the post-processor adds e.g. BOS. Thread-safe after loading.
 */
public final class Tokenizer {
    private final Bpe model;
    private final Normalizer normalizer;
    private final PreTokenizer preTokenizer;
    private final PostProcessor postProcessor;
    private final Decoder decoder;
    private final AddedVocabulary rawAdded = new AddedVocabulary();
    private final AddedVocabulary normalizedAdded = new AddedVocabulary();
    private final Map<String, Integer> addedIds = new HashMap<>();
    /** idToToken[id]: the token string of every id (added tokens override model tokens), null for holes. */
    private final String[] idToToken;
    private final boolean[] special;

    Tokenizer(JsonNode root, Bpe model) {
        this.model = model;
        normalizer = Normalizer.fromJson(root.get("normalizer"));
        preTokenizer = PreTokenizer.fromJson(root.get("pre_tokenizer"));
        decoder = Decoder.fromJson(root.get("decoder"));

        int maxId = -1;
        for (int id : model.vocab.values()) maxId = Math.max(maxId, id);
        List<AddedVocabulary.AddedToken> added = new ArrayList<>();
        JsonNode addedJson = root.path("added_tokens");
        for (JsonNode t : addedJson) {
            if (!t.has("id") || !t.has("content")) throw new AyaException("added token without id/content: " + t);
            AddedVocabulary.AddedToken token = new AddedVocabulary.AddedToken(t.get("id").asInt(),
                    t.get("content").asText(), t.path("special").asBoolean(false), t.path("single_word").asBoolean(false),
                    t.path("lstrip").asBoolean(false), t.path("rstrip").asBoolean(false),
                    t.path("normalized").asBoolean(!t.path("special").asBoolean(false)));
            if (token.id() < 0) throw new AyaException("added token '" + token.content() + "' has a negative id");
            added.add(token);
            maxId = Math.max(maxId, token.id());
        }
        if (maxId >= 1 << 26) throw new AyaException("token id " + maxId + " is implausibly large");
        idToToken = new String[maxId + 1];
        special = new boolean[maxId + 1];
        for (Map.Entry<String, Integer> e : model.vocab.entrySet()) idToToken[e.getValue()] = e.getKey();
        // HF builds its tries from the special tokens first, then the others.
        added.sort((a, b) -> Boolean.compare(b.special(), a.special()));
        for (AddedVocabulary.AddedToken t : added) {
            // HF reports (and decodes) a normalized added token by its normalized content.
            idToToken[t.id()] = t.normalized() && normalizer != null ? normalizer.normalize(t.content()) : t.content();
            special[t.id()] = t.special();
            addedIds.put(t.content(), t.id());
            if (t.normalized() && normalizer != null) normalizedAdded.add(t, normalizer.normalize(t.content()));
            else if (t.normalized()) normalizedAdded.add(t, t.content());
            else rawAdded.add(t, t.content());
        }
        postProcessor = PostProcessor.fromJson(root.get("post_processor"));
    }

    /** Loads a tokenizer.json; a missing or malformed file is an AyaException naming the file and the problem. */
    public static Tokenizer load(Path tokenizerJson) {
        String source = tokenizerJson.toString();
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(tokenizerJson);
        } catch (NoSuchFileException e) {
            throw new AyaException(source + ": file not found");
        } catch (IOException e) {
            throw new AyaException(source + ": cannot read: " + e.getMessage());
        }
        try {
            return parse(bytes);
        } catch (JsonProcessingException e) {
            throw new AyaException(source + ": malformed JSON: " + e.getOriginalMessage().lines().findFirst().orElse(""));
        } catch (IOException e) {
            throw new AyaException(source + ": cannot read: " + e.getMessage());
        } catch (AyaException e) {
            throw new AyaException(source + ": " + e.getMessage(), e);
        }
    }

    /**
     * Streams the file: the big model.vocab and model.merges go straight into our tables (a full JSON tree of a
     * 260k-token vocabulary costs seconds), everything else is read as small trees.
     */
    private static Tokenizer parse(byte[] bytes) throws IOException {
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode root = mapper.createObjectNode();
        Bpe model = null;
        try (JsonParser p = mapper.getFactory().createParser(bytes)) {
            if (p.nextToken() != JsonToken.START_OBJECT) throw new AyaException("not a JSON object");
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String field = p.currentName();
                JsonToken value = p.nextToken();
                if (field.equals("model") && value == JsonToken.START_OBJECT) model = parseModel(p, mapper);
                else root.set(field, mapper.readTree(p));
            }
        }
        if (model == null) throw new AyaException("no \"model\" object");
        return new Tokenizer(root, model);
    }

    private static Bpe parseModel(JsonParser p, ObjectMapper mapper) throws IOException {
        ObjectNode settings = mapper.createObjectNode();
        Map<String, Integer> vocab = null;
        List<String[]> merges = null;
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String field = p.currentName();
            JsonToken value = p.nextToken();
            if (field.equals("vocab") && value == JsonToken.START_OBJECT) {
                vocab = new HashMap<>(1 << 16);
                while (p.nextToken() == JsonToken.FIELD_NAME) {
                    String token = p.currentName();
                    if (p.nextToken() != JsonToken.VALUE_NUMBER_INT || p.getIntValue() < 0) {
                        throw new AyaException("BPE vocab entry '" + token + "' has a bad id: " + p.getText());
                    }
                    vocab.put(token, p.getIntValue());
                }
            } else if (field.equals("merges") && value == JsonToken.START_ARRAY) {
                merges = new ArrayList<>(1 << 16);
                for (JsonToken t = p.nextToken(); t != JsonToken.END_ARRAY; t = p.nextToken()) {
                    int rank = merges.size();
                    if (t == JsonToken.VALUE_STRING) {
                        String s = p.getText();
                        int space = s.indexOf(' ');
                        if (space < 0) throw new AyaException("BPE merge #" + rank + " '" + s + "' is not two tokens separated by a space");
                        merges.add(new String[]{s.substring(0, space), s.substring(space + 1)});
                    } else if (t == JsonToken.START_ARRAY && p.nextToken() == JsonToken.VALUE_STRING) {
                        String left = p.getText();
                        if (p.nextToken() != JsonToken.VALUE_STRING) throw new AyaException("BPE merge #" + rank + " is not a pair of strings");
                        String right = p.getText();
                        if (p.nextToken() != JsonToken.END_ARRAY) throw new AyaException("BPE merge #" + rank + " has more than two tokens");
                        merges.add(new String[]{left, right});
                    } else {
                        throw new AyaException("BPE merge #" + rank + " is neither \"a b\" nor [\"a\", \"b\"]");
                    }
                }
            } else {
                settings.set(field, mapper.readTree(p));
            }
        }
        String type = settings.has("type") ? settings.get("type").asText() : merges != null ? "BPE" : "?";
        if (!type.equals("BPE")) throw new AyaException("unsupported model type '" + type + "' (only BPE)");
        if (vocab == null) throw new AyaException("BPE model has no \"vocab\" object");
        if (merges == null) throw new AyaException("BPE model has no \"merges\" array");
        return new Bpe(settings, vocab, merges);
    }

    /** The ids of {@code text}; with {@code addSpecialTokens} the post-processor runs (e.g. prepends BOS). */
    public int[] encode(String text, boolean addSpecialTokens) {
        int[] ids = encodeNoPostProcess(text, true);
        return addSpecialTokens && postProcessor != null ? postProcessor.process(ids) : ids;
    }

    /**
     * The ids of {@code text} without the post-processor. With {@code matchSpecialTokens} false, the text of
     * special tokens is tokenized as plain text (used for chat message contents, so users cannot inject them).
     */
    public int[] encodeNoPostProcess(String text, boolean matchSpecialTokens) {
        IntList out = new IntList(text.length() / 3 + 4);
        boolean skipSpecial = !matchSpecialTokens;
        for (AddedVocabulary.Split s : rawAdded.split(text, skipSpecial)) {
            if (s.id() >= 0) {
                out.add(s.id());
                continue;
            }
            if (s.start() == s.end()) continue;
            String piece = text.substring(s.start(), s.end());
            boolean atStart = s.start() == 0;
            String normalized = normalizer == null ? piece : normalizer.normalize(piece);
            for (AddedVocabulary.Split n : normalizedAdded.split(normalized, skipSpecial)) {
                if (n.id() >= 0) {
                    out.add(n.id());
                } else if (n.start() < n.end()) {
                    tokenizeNormalized(normalized.substring(n.start(), n.end()), atStart && n.start() == 0, out);
                }
            }
        }
        return out.toArray();
    }

    /**
     * Encodes a rendered chat prompt whose message text was guarded (see ChatTemplate): the guards stop special
     * tokens from matching inside message text, and are removed before the text is normalized and tokenized.
     * A piece that held guards is also not searched for normalized special tokens.
     */
    int[] encodeGuarded(String text, char guard) {
        IntList out = new IntList(text.length() / 3 + 4);
        for (AddedVocabulary.Split s : rawAdded.split(text, false)) {
            if (s.id() >= 0) {
                out.add(s.id());
                continue;
            }
            if (s.start() == s.end()) continue;
            String guarded = text.substring(s.start(), s.end());
            String piece = ChatTemplate.unguard(guarded);
            boolean hadGuards = piece.length() != guarded.length();
            if (piece.isEmpty()) continue;
            String normalized = normalizer == null ? piece : normalizer.normalize(piece);
            for (AddedVocabulary.Split n : normalizedAdded.split(normalized, hadGuards)) {
                if (n.id() >= 0) out.add(n.id());
                else if (n.start() < n.end()) tokenizeNormalized(normalized.substring(n.start(), n.end()), s.start() == 0 && n.start() == 0, out);
            }
        }
        return out.toArray();
    }

    private void tokenizeNormalized(String text, boolean atStart, IntList out) {
        if (preTokenizer == null) {
            out.addAll(model.tokenize(text));
            return;
        }
        List<PreTokenizer.Piece> pieces = new ArrayList<>();
        preTokenizer.split(new PreTokenizer.Piece(text, atStart), pieces);
        for (PreTokenizer.Piece p : pieces) out.addAll(model.tokenize(p.text()));
    }

    /** The text of {@code ids}, special tokens included (like HF decode(skip_special_tokens=False)). */
    public String decode(int[] ids) {
        return decode(ids, false);
    }

    /** The text of {@code ids}; an id this tokenizer does not define is an AyaException. */
    public String decode(int[] ids, boolean skipSpecialTokens) {
        List<String> tokens = new ArrayList<>(ids.length);
        for (int id : ids) {
            String t = token(id);
            if (t == null) throw new AyaException("token id " + id + " is out of range (vocabulary has " + vocabSize() + " ids)");
            if (skipSpecialTokens && special[id]) continue;
            tokens.add(t);
        }
        if (decoder == null) return String.join(" ", tokens);
        return String.join("", decoder.decodeChain(tokens));
    }

    /** The token string of an id, or null if the id is not defined. */
    public String token(int id) {
        return id >= 0 && id < idToToken.length ? idToToken[id] : null;
    }

    /** The id of a token string (added tokens first, then the model vocabulary), or -1. */
    public int tokenId(String token) {
        Integer id = addedIds.get(token);
        if (id == null) id = model.vocab.get(token);
        return id == null ? -1 : id;
    }

    /** Number of ids the tokenizer defines: max id + 1 (the model's embedding table may be larger). */
    public int vocabSize() {
        return idToToken.length;
    }

    /** True for special added tokens (BOS, EOS, turn markers...). */
    public boolean isSpecial(int id) {
        return id >= 0 && id < special.length && special[id];
    }

    /** A growable int array. */
    static final class IntList {
        private int[] data;
        private int size;

        IntList(int capacity) {
            data = new int[Math.max(4, capacity)];
        }

        void add(int v) {
            if (size == data.length) data = Arrays.copyOf(data, size * 2);
            data[size++] = v;
        }

        void addAll(int[] vs) {
            if (size + vs.length > data.length) data = Arrays.copyOf(data, Math.max(size * 2, size + vs.length));
            System.arraycopy(vs, 0, data, size, vs.length);
            size += vs.length;
        }

        int[] toArray() {
            return Arrays.copyOf(data, size);
        }
    }
}
