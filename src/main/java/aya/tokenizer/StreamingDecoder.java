package aya.tokenizer;

import java.util.ArrayList;
import java.util.List;

/**
 * Turns ids into text as they arrive (for generation). Text is only emitted once it is final: bytes of a
 * character split over several tokens are held until the character is complete, so a UTF-8 character is never
 * emitted in halves. Same algorithm as HF's DecodeStream: decode a short window of ids with and without the new
 * one and emit the difference, holding it while the window's text ends in U+FFFD (an incomplete character).
 * Decoders that look at neighbours (Metaspace's first-token rule, Strip) stay correct because the window keeps
 * the previous ids as context. Not thread-safe: one instance per generation.
 */
public final class StreamingDecoder {
    private final Tokenizer tokenizer;
    private final boolean skipSpecialTokens;
    private final List<Integer> window = new ArrayList<>();
    /** Decoded text of window[0 .. prefixEnd). */
    private String prefix = "";
    private int prefixEnd = 0;

    public StreamingDecoder(Tokenizer tokenizer, boolean skipSpecialTokens) {
        this.tokenizer = tokenizer;
        this.skipSpecialTokens = skipSpecialTokens;
    }

    /** Adds one id; returns the newly final text, possibly "" while a character is incomplete. */
    public String accept(int id) {
        if (tokenizer.token(id) == null) {
            throw new aya.AyaException("token id " + id + " is out of range (vocabulary has " + tokenizer.vocabSize() + " ids)");
        }
        window.add(id);
        String text = decodeWindow();
        if (text.length() <= prefix.length() || text.endsWith("\uFFFD")) return "";
        String fresh = text.substring(commonPrefixLength(prefix, text));
        // Slide: the ids decoded so far become context; keep only the last piece as the new prefix window.
        List<Integer> kept = new ArrayList<>(window.subList(prefixEnd, window.size()));
        window.clear();
        window.addAll(kept);
        prefixEnd = window.size();
        prefix = decodeWindow();
        return fresh;
    }

    /** Flushes what is held at the end of generation (an incomplete character decodes to U+FFFD, as in HF). */
    public String finish() {
        String text = decodeWindow();
        String rest = text.length() > prefix.length() ? text.substring(commonPrefixLength(prefix, text)) : "";
        window.clear();
        prefix = "";
        prefixEnd = 0;
        return rest;
    }

    private String decodeWindow() {
        int[] ids = new int[window.size()];
        for (int i = 0; i < ids.length; i++) ids[i] = window.get(i);
        return tokenizer.decode(ids, skipSpecialTokens);
    }

    private static int commonPrefixLength(String a, String b) {
        int n = Math.min(a.length(), b.length());
        int i = 0;
        while (i < n && a.charAt(i) == b.charAt(i)) i++;
        if (i > 0 && i < b.length() && Character.isLowSurrogate(b.charAt(i)) && Character.isHighSurrogate(b.charAt(i - 1))) i--;
        return i;
    }
}
