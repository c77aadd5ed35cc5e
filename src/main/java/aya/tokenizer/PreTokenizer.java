package aya.tokenizer;

import aya.AyaException;
import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.List;
import java.util.function.IntPredicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A tokenizer.json "pre_tokenizer": cuts each piece of text into smaller pieces (HF tokenizers semantics).
 * Empty pieces are dropped, as HF does.
 */
interface PreTokenizer {

    /**
     * A piece of text. {@code atStart} is true when the piece begins at offset 0 of the original input
     * (Metaspace's prepend_scheme "first" only adds its marker there).
     */
    record Piece(String text, boolean atStart) {
    }

    /** Appends the pieces that {@code piece} splits into to {@code out}. */
    void split(Piece piece, List<Piece> out);

    enum Behavior { REMOVED, ISOLATED, MERGED_WITH_PREVIOUS, MERGED_WITH_NEXT, CONTIGUOUS }

    /** The GPT-2 regex that ByteLevel(use_regex=true) splits with. */
    String GPT2_REGEX = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

    static PreTokenizer fromJson(JsonNode json) {
        if (json == null || json.isNull()) return null;
        String type = Json.type(json, "pre_tokenizer");
        return switch (type) {
            case "Sequence" -> {
                List<PreTokenizer> parts = new ArrayList<>();
                for (JsonNode n : Json.array(json, "pretokenizers")) parts.add(fromJson(n));
                yield (piece, out) -> {
                    List<Piece> current = List.of(piece);
                    for (PreTokenizer part : parts) {
                        List<Piece> next = new ArrayList<>();
                        for (Piece p : current) part.split(p, next);
                        current = next;
                    }
                    out.addAll(current);
                };
            }
            case "Split" -> {
                JsonNode p = json.get("pattern");
                MatchFinder finder = p != null && DIGIT_GROUPS_REGEX.equals(p.path("Regex").asText(null))
                        ? PreTokenizer::digitGroups
                        : regexFinder(Json.pattern(p, "Split pre_tokenizer"));
                Behavior behavior = behavior(json.path("behavior").asText(""));
                boolean invert = json.path("invert").asBoolean(false);
                yield (piece, out) -> splitRegex(piece, finder, behavior, invert, out);
            }
            case "ByteLevel" -> byteLevel(json);
            case "Digits" -> {
                Behavior behavior = json.path("individual_digits").asBoolean(false) ? Behavior.ISOLATED : Behavior.CONTIGUOUS;
                yield (piece, out) -> splitChars(piece, Text::isNumeric, behavior, out);
            }
            case "Metaspace" -> metaspace(json);
            case "Whitespace" -> {
                // HF keeps the matches of \w+|[^\w\s]+ (Oniguruma classes).
                Pattern words = OnigRegex.compile("\\w+|[^\\w\\s]+");
                yield (piece, out) -> splitRegex(piece, words, Behavior.REMOVED, true, out);
            }
            case "WhitespaceSplit" -> (piece, out) -> splitChars(piece, Text::isWhitespace, Behavior.REMOVED, out);
            case "Punctuation" -> {
                Behavior behavior = behavior(json.path("behavior").asText("Isolated"));
                yield (piece, out) -> splitChars(piece, Text::isPunctuation, behavior, out);
            }
            case "CharDelimiterSplit" -> {
                int delimiter = Json.string(json, "delimiter").codePointAt(0);
                yield (piece, out) -> splitChars(piece, cp -> cp == delimiter, Behavior.REMOVED, out);
            }
            case "BertPreTokenizer" -> (piece, out) -> {
                List<Piece> words = new ArrayList<>();
                splitChars(piece, Text::isWhitespace, Behavior.REMOVED, words);
                for (Piece w : words) splitChars(w, Text::isPunctuation, Behavior.ISOLATED, out);
            };
            default -> throw new AyaException("unsupported pre_tokenizer type '" + type + "'");
        };
    }

    private static Behavior behavior(String name) {
        return switch (name) {
            case "Removed" -> Behavior.REMOVED;
            case "Isolated" -> Behavior.ISOLATED;
            case "MergedWithPrevious" -> Behavior.MERGED_WITH_PREVIOUS;
            case "MergedWithNext" -> Behavior.MERGED_WITH_NEXT;
            case "Contiguous" -> Behavior.CONTIGUOUS;
            default -> throw new AyaException("unsupported Split behavior '" + name + "'");
        };
    }

    private static PreTokenizer byteLevel(JsonNode json) {
        boolean addPrefixSpace = json.path("add_prefix_space").asBoolean(true);
        boolean useRegex = json.path("use_regex").asBoolean(true);
        Pattern gpt2 = useRegex ? OnigRegex.compile(GPT2_REGEX) : null;
        return (piece, out) -> {
            Piece p = piece;
            if (addPrefixSpace && !p.text().startsWith(" ")) p = new Piece(" " + p.text(), p.atStart());
            if (gpt2 == null) {
                if (!p.text().isEmpty()) out.add(new Piece(ByteLevel.encode(p.text()), p.atStart()));
                return;
            }
            int first = out.size();
            splitRegex(p, gpt2, Behavior.ISOLATED, false, out);
            for (int i = first; i < out.size(); i++) {
                Piece q = out.get(i);
                out.set(i, new Piece(ByteLevel.encode(q.text()), q.atStart()));
            }
        };
    }

    private static PreTokenizer metaspace(JsonNode json) {
        String replacement = Json.string(json, "replacement");
        String scheme;
        if (json.has("prepend_scheme")) scheme = json.get("prepend_scheme").asText();
        else scheme = json.path("add_prefix_space").asBoolean(true) ? "always" : "never";
        boolean split = json.path("split").asBoolean(true);
        int marker = replacement.codePointAt(0);
        return (piece, out) -> {
            String text = piece.text().replace(" ", replacement);
            boolean prepend = switch (scheme) {
                case "always" -> true;
                case "first" -> piece.atStart();
                case "never" -> false;
                default -> throw new AyaException("unsupported Metaspace prepend_scheme '" + scheme + "'");
            };
            if (prepend && !text.startsWith(replacement)) text = replacement + text;
            Piece p = new Piece(text, piece.atStart());
            if (split) splitChars(p, cp -> cp == marker, Behavior.MERGED_WITH_NEXT, out);
            else if (!text.isEmpty()) out.add(p);
        };
    }

    /** Splits on each char matching {@code isDelimiter} (every such char is its own match, like HF). */
    static void splitChars(Piece piece, IntPredicate isDelimiter, Behavior behavior, List<Piece> out) {
        String s = piece.text();
        if (s.isEmpty()) return;
        Segments segs = new Segments(s.length());
        int last = 0;
        for (int i = 0; i < s.length(); ) {
            int cp = s.codePointAt(i);
            int next = i + Character.charCount(cp);
            if (isDelimiter.test(cp)) {
                if (last < i) segs.add(last, i, false);
                segs.add(i, next, true);
                last = next;
            }
            i = next;
        }
        if (last < s.length()) segs.add(last, s.length(), false);
        segs.emit(piece, behavior, out);
    }

    /** Receives one match as (start, end) char offsets. */
    interface MatchSink {
        void match(int start, int end);
    }

    /** Reports the matches of a pattern in s, left to right. */
    interface MatchFinder {
        void find(String s, MatchSink sink);
    }

    static MatchFinder regexFinder(Pattern pattern) {
        return (s, sink) -> {
            Matcher m = pattern.matcher(s);
            while (m.find()) sink.match(m.start(), m.end());
        };
    }

    /** Tiny Aya's digit-grouping split: groups of three digits counted from the right end of a number. */
    String DIGIT_GROUPS_REGEX = "\\d{1,3}(?=(?:\\d{3})*\\b)";

    /**
     * The matches of DIGIT_GROUPS_REGEX in linear time (a backtracking engine needs quadratic time on long digit
     * runs). A run of Nd digits matches only if a word boundary follows it (end of text or a non-word char, with
     * Oniguruma's word class); its groups are then 1-3 digits, then threes. OnigRegexTest checks this against the
     * translated regex.
     */
    static void digitGroups(String s, MatchSink sink) {
        int n = s.length();
        int i = 0;
        while (i < n) {
            int cp = s.codePointAt(i);
            if (Character.getType(cp) != Character.DECIMAL_DIGIT_NUMBER) {
                i += Character.charCount(cp);
                continue;
            }
            int runStart = i;
            int count = 0;
            int j = i;
            while (j < n && Character.getType(cp = s.codePointAt(j)) == Character.DECIMAL_DIGIT_NUMBER) {
                j += Character.charCount(cp);
                count++;
            }
            if (j == n || !isOnigWordChar(s.codePointAt(j))) {
                int group = (count - 1) % 3 + 1;
                for (int k = runStart; k < j; group = 3) {
                    int e = k;
                    for (int c = 0; c < group; c++) e += Character.charCount(s.codePointAt(e));
                    sink.match(k, e);
                    k = e;
                }
            }
            i = j;
        }
    }

    /** A char of Oniguruma's word class (see OnigRegex.WORD). */
    static boolean isOnigWordChar(int cp) {
        if (Character.isAlphabetic(cp)) return true;
        int t = Character.getType(cp);
        return t == Character.NON_SPACING_MARK || t == Character.COMBINING_SPACING_MARK || t == Character.ENCLOSING_MARK
                || t == Character.DECIMAL_DIGIT_NUMBER || t == Character.CONNECTOR_PUNCTUATION
                || cp == 0xB2 || cp == 0xB3 || cp == 0xB9 || (cp >= 0xBC && cp <= 0xBE);
    }

    /** Splits on the matches of a regex ({@code invert}: the non-matches are the delimiters). */
    static void splitRegex(Piece piece, Pattern pattern, Behavior behavior, boolean invert, List<Piece> out) {
        splitRegex(piece, regexFinder(pattern), behavior, invert, out);
    }

    static void splitRegex(Piece piece, MatchFinder finder, Behavior behavior, boolean invert, List<Piece> out) {
        String s = piece.text();
        if (s.isEmpty()) return;
        Segments segs = new Segments(16);
        int[] prev = {0};
        finder.find(s, (start, end) -> {
            if (prev[0] != start) segs.add(prev[0], start, invert);
            segs.add(start, end, !invert);
            prev[0] = end;
        });
        if (prev[0] != s.length()) segs.add(prev[0], s.length(), invert);
        segs.emit(piece, behavior, out);
    }

    /** The cover of a string by alternating (start, end, isMatch) segments, and HF's behaviors over it. */
    final class Segments {
        private int[] starts;
        private int[] ends;
        private boolean[] matches;
        private int size;

        Segments(int capacity) {
            capacity = Math.max(4, capacity);
            starts = new int[capacity];
            ends = new int[capacity];
            matches = new boolean[capacity];
        }

        void add(int start, int end, boolean isMatch) {
            if (size == starts.length) {
                starts = java.util.Arrays.copyOf(starts, size * 2);
                ends = java.util.Arrays.copyOf(ends, size * 2);
                matches = java.util.Arrays.copyOf(matches, size * 2);
            }
            starts[size] = start;
            ends[size] = end;
            matches[size] = isMatch;
            size++;
        }

        void emit(Piece piece, Behavior behavior, List<Piece> out) {
            switch (behavior) {
                case ISOLATED -> {
                    for (int i = 0; i < size; i++) add(out, piece, starts[i], ends[i]);
                }
                case REMOVED -> {
                    for (int i = 0; i < size; i++) if (!matches[i]) add(out, piece, starts[i], ends[i]);
                }
                case CONTIGUOUS, MERGED_WITH_PREVIOUS -> {
                    // Fold left: a segment joins the previous one (contiguous: same kind; with-previous: a match
                    // right after a non-match).
                    int curStart = -1;
                    int curEnd = -1;
                    boolean previousMatch = false;
                    for (int i = 0; i < size; i++) {
                        boolean join = behavior == Behavior.CONTIGUOUS
                                ? matches[i] == previousMatch
                                : matches[i] && !previousMatch;
                        if (join && curStart >= 0) {
                            curEnd = ends[i];
                        } else {
                            if (curStart >= 0) add(out, piece, curStart, curEnd);
                            curStart = starts[i];
                            curEnd = ends[i];
                        }
                        previousMatch = matches[i];
                    }
                    if (curStart >= 0) add(out, piece, curStart, curEnd);
                }
                case MERGED_WITH_NEXT -> {
                    // Fold right: a match right before a non-match joins it.
                    int[] outStarts = new int[size];
                    int[] outEnds = new int[size];
                    int count = 0;
                    boolean previousMatch = false;
                    for (int i = size - 1; i >= 0; i--) {
                        if (matches[i] && !previousMatch && count > 0) {
                            outStarts[count - 1] = starts[i];
                        } else {
                            outStarts[count] = starts[i];
                            outEnds[count] = ends[i];
                            count++;
                        }
                        previousMatch = matches[i];
                    }
                    for (int i = count - 1; i >= 0; i--) add(out, piece, outStarts[i], outEnds[i]);
                }
            }
        }

        private static void add(List<Piece> out, Piece piece, int start, int end) {
            if (start == end) return;
            out.add(new Piece(piece.text().substring(start, end), piece.atStart() && start == 0));
        }
    }
}
