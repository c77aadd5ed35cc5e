package aya.tokenizer;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The added tokens of tokenizer.json (special tokens like {@code <BOS_TOKEN>} and user-added words), matched
 * in the text before the model runs, like HF's AddedVocabulary: leftmost-longest over all contents, then the
 * single_word, lstrip and rstrip rules applied to each match.
 */
final class AddedVocabulary {

    record AddedToken(int id, String content, boolean special, boolean singleWord, boolean lstrip,
                      boolean rstrip, boolean normalized) {
    }

    /** A split of a string: an added token's id, or -1 for ordinary text. Offsets are char indices. */
    record Split(int id, int start, int end) {
    }

    /** A trie over code points; each node may end a token. */
    private static final class Node {
        final Map<Integer, Node> children = new HashMap<>(4);
        AddedToken token;
    }

    private final Node root = new Node();
    private boolean empty = true;

    void add(AddedToken token, String matchText) {
        if (matchText.isEmpty()) return;
        Node node = root;
        for (int i = 0; i < matchText.length(); ) {
            int cp = matchText.codePointAt(i);
            i += Character.charCount(cp);
            node = node.children.computeIfAbsent(cp, k -> new Node());
        }
        if (node.token == null) node.token = token;  // HF keeps the first token listed for equal contents
        empty = false;
    }

    boolean isEmpty() {
        return empty;
    }

    /**
     * Splits {@code s} into added-token matches and the text between them (covering all of s).
     * With {@code skipSpecial}, special tokens are not matched (their text stays ordinary text).
     */
    List<Split> split(String s, boolean skipSpecial) {
        List<Split> splits = new ArrayList<>();
        if (empty || s.isEmpty()) {
            splits.add(new Split(-1, 0, s.length()));
            return splits;
        }
        int startOffset = 0;
        int pos = 0;
        while (pos < s.length()) {
            // Longest token starting at pos.
            Node node = root;
            AddedToken best = null;
            int bestEnd = -1;
            for (int i = pos; i < s.length(); ) {
                int cp = s.codePointAt(i);
                i += Character.charCount(cp);
                node = node.children.get(cp);
                if (node == null) break;
                if (node.token != null) {
                    best = node.token;
                    bestEnd = i;
                }
            }
            if (best == null) {
                pos += Character.charCount(s.codePointAt(pos));
                continue;
            }
            int start = pos;
            int stop = bestEnd;
            pos = bestEnd;
            if (skipSpecial && best.special()) continue;
            if (best.singleWord()) {
                boolean startSpace = start == 0 || !isWordChar(s.codePointBefore(start));
                boolean stopSpace = stop == s.length() || !isWordChar(s.codePointAt(stop));
                if (!startSpace || !stopSpace) continue;
            }
            if (best.lstrip()) {
                int newStart = start;
                while (newStart > 0 && Text.isWhitespace(s.codePointBefore(newStart))) {
                    newStart -= Character.charCount(s.codePointBefore(newStart));
                }
                start = Math.max(newStart, startOffset);
            }
            if (best.rstrip()) {
                while (stop < s.length() && Text.isWhitespace(s.codePointAt(stop))) {
                    stop += Character.charCount(s.codePointAt(stop));
                }
            }
            if (startOffset < start) splits.add(new Split(-1, startOffset, start));
            splits.add(new Split(best.id(), start, stop));
            startOffset = stop;
        }
        if (startOffset != s.length()) splits.add(new Split(-1, startOffset, s.length()));
        return splits;
    }

    /** The end of the longest token starting at {@code pos}, or -1. */
    int longestAt(String s, int pos) {
        Node node = root;
        int bestEnd = -1;
        for (int i = pos; i < s.length(); ) {
            int cp = s.codePointAt(i);
            i += Character.charCount(cp);
            node = node.children.get(cp);
            if (node == null) break;
            if (node.token != null) bestEnd = i;
        }
        return bestEnd;
    }

    /** Rust regex's Unicode \w: Alphabetic, marks, decimal digits, connector punctuation, joiners. */
    static boolean isWordChar(int cp) {
        if (Character.isAlphabetic(cp)) return true;
        int t = Character.getType(cp);
        return t == Character.NON_SPACING_MARK || t == Character.COMBINING_SPACING_MARK || t == Character.ENCLOSING_MARK
                || t == Character.DECIMAL_DIGIT_NUMBER || t == Character.CONNECTOR_PUNCTUATION
                || cp == 0x200C || cp == 0x200D;
    }
}
