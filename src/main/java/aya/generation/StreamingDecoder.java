package aya.generation;

import java.util.Arrays;
import java.util.function.Function;

/**
 * Turns generated ids into text as they come, never emitting half a character: a byte-level token can end in the
 * middle of a UTF-8 sequence, and decoding it alone gives U+FFFD. Like HF tokenizers' {@code DecodeStream}: decode
 * the ids since the last emitted boundary, hold back while the text ends in U+FFFD (an incomplete sequence), else
 * emit what is new and move the boundary. {@link #finish()} emits what is left (U+FFFD for bytes that never became a
 * character), so the concatenated pieces equal decoding all ids at once.
 */
public final class StreamingDecoder {

    private final Function<int[], String> decode;
    private int[] ids = new int[64];
    private int size;
    private int prefixIndex; // first id of the window we decode (one emitted token of context, for decoders that strip)
    private int readIndex;   // ids before this have been emitted

    /** @param decode the tokenizer's decode of a list of ids (e.g. skipping special tokens) */
    public StreamingDecoder(Function<int[], String> decode) {
        this.decode = decode;
    }

    /** Adds one id; returns the text it completes (often empty while a character is incomplete). */
    public String push(int id) {
        if (size == ids.length) ids = Arrays.copyOf(ids, size * 2);
        ids[size++] = id;
        String prefix = decode.apply(Arrays.copyOfRange(ids, prefixIndex, readIndex));
        String text = decode.apply(Arrays.copyOfRange(ids, prefixIndex, size));
        if (text.length() <= prefix.length() || text.endsWith("\uFFFD") || !text.startsWith(prefix)) {
            return "";
        }
        prefixIndex = readIndex;
        readIndex = size;
        return text.substring(prefix.length());
    }

    /** The text of the ids not emitted yet (incomplete characters become U+FFFD); the stream starts over. */
    public String finish() {
        String out = "";
        if (readIndex < size) {
            String prefix = decode.apply(Arrays.copyOfRange(ids, prefixIndex, readIndex));
            String text = decode.apply(Arrays.copyOfRange(ids, prefixIndex, size));
            out = text.startsWith(prefix) ? text.substring(prefix.length()) : text;
        }
        size = prefixIndex = readIndex = 0;
        return out;
    }
}
