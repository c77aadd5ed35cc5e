package aya.tokenizer;

import aya.AyaException;

import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Translates the Oniguruma (Ruby syntax, UTF-8) regexes found in tokenizer.json into java.util.regex.
 *
 * <p>HF tokenizers runs these patterns with Oniguruma, whose shorthand classes are Unicode-aware:
 * {@code \s} is the White_Space property, {@code \d} is Nd, {@code \w} is Oniguruma's word class (see WORD), and
 * {@code \b} is a boundary of that word class. Java's defaults are ASCII, and (?U) would also change things
 * we do not want, so each construct is rewritten explicitly. {@code ^}/{@code $} are line anchors in Ruby
 * syntax and {@code .} excludes only '\n': MULTILINE | UNIX_LINES reproduce that. {@code (?i)} folds
 * Unicode case in Oniguruma, so it becomes {@code (?iu)}.
 */
final class OnigRegex {
    private OnigRegex() {
    }

    /**
     * Oniguruma's word class as members of a Java character class: Alphabetic, marks, Nd, Pc (not the joiners),
     * plus the Latin-1 digits and fractions its ISO-8859-1 table marks as word chars (checked by OnigRegexTest).
     */
    static final String WORD = "\\p{IsAlphabetic}\\p{M}\\p{Nd}\\p{Pc}\\xB2\\xB3\\xB9\\xBC-\\xBE";
    private static final String SPACE = "\\p{IsWhite_Space}";
    private static final String NOT_SPACE = "\\P{IsWhite_Space}";
    /**
     * "The previous code point is a word char", for use inside a lookbehind. Java's lookbehind does not see a
     * supplementary char (e.g. U+1D7D9, a digit) as one code point, so a surrogate pair is checked with a lookahead.
     */
    private static final String WORD_BEHIND = "(?:[" + WORD + "]|(?=[" + WORD + "])[\\uD800-\\uDBFF][\\uDC00-\\uDFFF])";
    private static final String BOUNDARY =
            "(?:(?<=" + WORD_BEHIND + ")(?![" + WORD + "])|(?<!" + WORD_BEHIND + ")(?=[" + WORD + "]))";
    private static final String NOT_BOUNDARY =
            "(?:(?<=" + WORD_BEHIND + ")(?=[" + WORD + "])|(?<!" + WORD_BEHIND + ")(?![" + WORD + "]))";

    /** Oniguruma property names (lower case, without '_', '-', ' ') whose Java spelling differs. */
    private static final Map<String, String> PROPERTIES = Map.ofEntries(
            Map.entry("alpha", "\\p{IsAlphabetic}"),
            Map.entry("alphabetic", "\\p{IsAlphabetic}"),
            Map.entry("digit", "\\p{Nd}"),
            Map.entry("alnum", "[\\p{IsAlphabetic}\\p{Nd}]"),
            Map.entry("space", SPACE),
            Map.entry("whitespace", SPACE),
            Map.entry("upper", "\\p{IsUppercase}"),
            Map.entry("uppercase", "\\p{IsUppercase}"),
            Map.entry("lower", "\\p{IsLowercase}"),
            Map.entry("lowercase", "\\p{IsLowercase}"),
            Map.entry("punct", "[\\p{P}\\p{S}]"),
            Map.entry("word", "[" + WORD + "]"),
            Map.entry("xdigit", "[0-9A-Fa-f]"),
            Map.entry("cntrl", "\\p{Cc}"),
            Map.entry("blank", "[\\p{Zs}\\t]"),
            Map.entry("any", "[\\x{0}-\\x{10FFFF}]"),
            Map.entry("letter", "\\p{L}"),
            Map.entry("mark", "\\p{M}"),
            Map.entry("number", "\\p{N}"),
            Map.entry("punctuation", "\\p{P}"),
            Map.entry("symbol", "\\p{S}"),
            Map.entry("separator", "\\p{Z}"),
            Map.entry("other", "\\p{C}"),
            Map.entry("uppercaseletter", "\\p{Lu}"),
            Map.entry("lowercaseletter", "\\p{Ll}"),
            Map.entry("titlecaseletter", "\\p{Lt}"),
            Map.entry("modifierletter", "\\p{Lm}"),
            Map.entry("otherletter", "\\p{Lo}"),
            Map.entry("decimalnumber", "\\p{Nd}"),
            Map.entry("nonspacingmark", "\\p{Mn}"),
            Map.entry("spacingmark", "\\p{Mc}"),
            Map.entry("enclosingmark", "\\p{Me}"));

    private static final int FLAGS = Pattern.MULTILINE | Pattern.UNIX_LINES;

    /** Compiles an Oniguruma pattern; a pattern we cannot express is a user error naming it. */
    static Pattern compile(String onig) {
        String java = translate(onig);
        try {
            return Pattern.compile(java, FLAGS);
        } catch (PatternSyntaxException e) {
            throw new AyaException("cannot translate regex " + quote(onig) + ": " + e.getDescription());
        }
    }

    /** A pattern that matches the literal text. */
    static Pattern literal(String text) {
        return Pattern.compile(Pattern.quote(text));
    }

    static String translate(String p) {
        StringBuilder out = new StringBuilder(p.length() * 2);
        int classDepth = 0;
        int i = 0;
        int n = p.length();
        while (i < n) {
            char c = p.charAt(i);
            if (c == '\\') {
                if (i + 1 >= n) throw new AyaException("regex " + quote(p) + " ends with a lone backslash");
                char e = p.charAt(i + 1);
                boolean inClass = classDepth > 0;
                switch (e) {
                    case 's' -> out.append(SPACE);
                    case 'S' -> out.append(NOT_SPACE);
                    case 'd' -> out.append("\\p{Nd}");
                    case 'D' -> out.append("\\P{Nd}");
                    case 'w' -> out.append(inClass ? WORD : "[" + WORD + "]");
                    case 'W' -> out.append("[^" + WORD + "]");
                    case 'h' -> out.append(inClass ? "0-9a-fA-F" : "[0-9a-fA-F]");
                    case 'H' -> out.append("[^0-9a-fA-F]");
                    case 'v' -> out.append("\\x0B");
                    case 'b' -> out.append(inClass ? "\\x08" : BOUNDARY);
                    case 'B' -> {
                        if (inClass) throw new AyaException("regex " + quote(p) + ": \\B inside a character class");
                        out.append(NOT_BOUNDARY);
                    }
                    case 'K' -> throw new AyaException("regex " + quote(p) + ": \\K is not supported");
                    case 'x' -> {
                        // \x{HHHH}: copied whole, so its braces are not read as an interval below
                        int close = i + 2 < n && p.charAt(i + 2) == '{' ? p.indexOf('}', i) : -1;
                        if (close < 0) {
                            out.append(c).append(e);
                        } else {
                            out.append(p, i, close + 1);
                            i = close + 1;
                            continue;
                        }
                    }
                    case 'p', 'P' -> {
                        int close = p.indexOf('}', i);
                        if (i + 2 >= n || p.charAt(i + 2) != '{' || close < 0)
                            throw new AyaException("regex " + quote(p) + ": malformed \\" + e + "{...}");
                        String name = p.substring(i + 3, close);
                        boolean negate = e == 'P';
                        if (name.startsWith("^")) {
                            negate = !negate;
                            name = name.substring(1);
                        }
                        out.append(property(name, negate, p));
                        i = close + 1;
                        continue;
                    }
                    default -> out.append(c).append(e);
                }
                i += 2;
                continue;
            }
            if (c == '[') {
                if (classDepth > 0 && p.startsWith("[:", i)) {
                    int close = p.indexOf(":]", i + 2);
                    if (close > 0) {
                        String name = p.substring(i + 2, close);
                        boolean negate = name.startsWith("^");
                        if (negate) name = name.substring(1);
                        out.append(property(name, negate, p));
                        i = close + 2;
                        continue;
                    }
                }
                classDepth++;
                out.append(c);
                i++;
                if (i < n && p.charAt(i) == '^') {
                    out.append('^');
                    i++;
                }
                // A ']' right after '[' or '[^' is a literal in Oniguruma, a syntax error in Java.
                if (i < n && p.charAt(i) == ']') {
                    out.append("\\]");
                    i++;
                }
                continue;
            }
            if (c == ']' && classDepth > 0) {
                classDepth--;
                out.append(c);
                i++;
                continue;
            }
            if (c == '{' && classDepth == 0) {
                i = interval(p, i, out);
                continue;
            }
            if (c == '(' && classDepth == 0 && p.startsWith("(?", i) && i + 2 < n) {
                // Inline options: Ruby's 'm' is Java's 's' (dot matches newline); 'i' folds Unicode case.
                int j = i + 2;
                StringBuilder flags = new StringBuilder();
                while (j < n && "imx-".indexOf(p.charAt(j)) >= 0) {
                    char f = p.charAt(j);
                    flags.append(f == 'm' ? 's' : f == 'i' ? "iu" : String.valueOf(f));
                    j++;
                }
                if (flags.length() > 0 && j < n && (p.charAt(j) == ':' || p.charAt(j) == ')')) {
                    out.append("(?").append(flags);
                    i = j;
                    continue;
                }
            }
            out.append(c);
            i++;
        }
        return out.toString();
    }

    /** Oniguruma's largest repeat count (ONIG_MAX_REPEAT_NUM): a larger one is an error there. */
    private static final int MAX_REPEAT = 100_000;

    /**
     * An unescaped '{' outside a class, at {@code i}, as Oniguruma's Ruby syntax (HF tokenizers' default) reads it:
     * {@code {n}}, {@code {n,}}, {@code {n,m}} and {@code {,m}} (= {@code {0,m}}, which Java refuses) are intervals;
     * {@code {n,m}} with n > m is the possessive {@code {m,n}+}; anything else (e.g. {@code {}, {@code {,}},
     * {@code {a}}, a '{' without '}') is a literal '{' (Java would refuse it). Two forms mean something else in
     * Java and are refused: {@code {n}?} (optional in Ruby syntax, reluctant in Java) and an interval followed by
     * '+' (repeated again in Ruby syntax, possessive in Java). Appends the translation; returns the next index.
     */
    private static int interval(String p, int i, StringBuilder out) {
        int n = p.length();
        int j = i + 1;
        int lowStart = j;
        while (j < n && p.charAt(j) >= '0' && p.charAt(j) <= '9') j++;
        String low = p.substring(lowStart, j);
        String high = null;
        boolean comma = j < n && p.charAt(j) == ',';
        if (comma) {
            int highStart = ++j;
            while (j < n && p.charAt(j) >= '0' && p.charAt(j) <= '9') j++;
            high = p.substring(highStart, j);
        }
        boolean valid = j < n && p.charAt(j) == '}' && !(low.isEmpty() && (!comma || high.isEmpty()));
        if (!valid) {
            out.append("\\{");
            return i + 1;
        }
        int end = j + 1;
        long lo = low.isEmpty() ? 0 : parseRepeat(low, p);
        long hi = !comma ? lo : high.isEmpty() ? -1 : parseRepeat(high, p);
        char next = end < n ? p.charAt(end) : 0;
        if (next == '+') {
            throw new AyaException("regex " + quote(p) + ": an interval followed by '+' is not supported"
                    + " (Oniguruma repeats it again, Java would make it possessive)");
        }
        if (next == '?' && !comma) {
            throw new AyaException("regex " + quote(p) + ": '{n}?' is not supported (optional in Oniguruma, not in Java)");
        }
        if (hi >= 0 && lo > hi) {
            out.append('{').append(hi).append(',').append(lo).append("}+");
        } else {
            out.append('{').append(lo);
            if (comma) out.append(',').append(hi < 0 ? "" : Long.toString(hi));
            out.append('}');
        }
        return end;
    }

    private static long parseRepeat(String digits, String pattern) {
        if (digits.length() > 7 || Long.parseLong(digits) > MAX_REPEAT) {
            throw new AyaException("regex " + quote(pattern) + ": repeat count " + digits + " is above " + MAX_REPEAT);
        }
        return Long.parseLong(digits);
    }

    private static String property(String name, boolean negate, String pattern) {
        String key = name.toLowerCase(Locale.ROOT).replace("_", "").replace("-", "").replace(" ", "");
        String java = PROPERTIES.get(key);
        if (java == null) {
            for (String candidate : new String[]{"\\p{" + name + "}", "\\p{Is" + name + "}"}) {
                try {
                    Pattern.compile(candidate);
                    java = candidate;
                    break;
                } catch (PatternSyntaxException ignored) {
                    // try the next spelling
                }
            }
        }
        if (java == null) throw new AyaException("regex " + quote(pattern) + ": unknown property \\p{" + name + "}");
        if (!negate) return java;
        if (java.startsWith("\\p{")) return "\\P" + java.substring(2);
        if (java.startsWith("\\P{")) return "\\p" + java.substring(2);
        if (java.startsWith("[^")) return "[" + java.substring(2);
        if (java.startsWith("[")) return "[^" + java.substring(1);
        return "[^" + java + "]";
    }

    private static String quote(String s) {
        return s.length() > 80 ? "'" + s.substring(0, 77) + "...'" : "'" + s + "'";
    }
}
