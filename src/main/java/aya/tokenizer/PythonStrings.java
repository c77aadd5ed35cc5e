package aya.tokenizer;

import aya.JsonText;

import java.time.LocalDateTime;
import java.time.format.TextStyle;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/** Python str methods, json.dumps and strftime, for chat templates written against Python's Jinja2. */
final class PythonStrings {
    private PythonStrings() {
    }

    /** The result of s.name(args) with Python semantics, or empty if we do not know the method. */
    static Optional<Object> call(String s, String name, Object[] a) {
        Object r = switch (name) {
            case "strip" -> strip(s, arg(a, 0), true, true);
            case "lstrip" -> strip(s, arg(a, 0), true, false);
            case "rstrip" -> strip(s, arg(a, 0), false, true);
            case "split" -> split(s, arg(a, 0), a.length > 1 ? ((Number) a[1]).intValue() : -1);
            case "splitlines" -> splitlines(s);
            case "startswith" -> anyOf(a[0], p -> s.startsWith(p));
            case "endswith" -> anyOf(a[0], p -> s.endsWith(p));
            case "upper" -> s.toUpperCase(Locale.ROOT);
            case "lower" -> s.toLowerCase(Locale.ROOT);
            case "title" -> title(s);
            case "capitalize" -> s.isEmpty() ? s : s.substring(0, s.offsetByCodePoints(0, 1)).toUpperCase(Locale.ROOT)
                    + s.substring(s.offsetByCodePoints(0, 1)).toLowerCase(Locale.ROOT);
            case "replace" -> replace(s, String.valueOf(a[0]), String.valueOf(a[1]), a.length > 2 ? ((Number) a[2]).intValue() : -1);
            case "find" -> (long) s.indexOf(String.valueOf(a[0]));
            case "rfind" -> (long) s.lastIndexOf(String.valueOf(a[0]));
            case "count" -> count(s, String.valueOf(a[0]));
            case "join" -> join(s, a[0]);
            case "removeprefix" -> s.startsWith(String.valueOf(a[0])) ? s.substring(String.valueOf(a[0]).length()) : s;
            case "removesuffix" -> s.endsWith(String.valueOf(a[0])) && !String.valueOf(a[0]).isEmpty()
                    ? s.substring(0, s.length() - String.valueOf(a[0]).length()) : s;
            case "isdigit" -> !s.isEmpty() && s.codePoints().allMatch(Character::isDigit);
            case "isalpha" -> !s.isEmpty() && s.codePoints().allMatch(Character::isLetter);
            case "isspace" -> !s.isEmpty() && s.codePoints().allMatch(PythonStrings::isSpace);
            case "isupper" -> s.codePoints().anyMatch(Character::isUpperCase) && s.codePoints().noneMatch(Character::isLowerCase);
            case "islower" -> s.codePoints().anyMatch(Character::isLowerCase) && s.codePoints().noneMatch(Character::isUpperCase);
            default -> null;
        };
        return Optional.ofNullable(r);
    }

    private static String arg(Object[] a, int i) {
        return a.length > i && a[i] != null ? String.valueOf(a[i]) : null;
    }

    /** Python's str.isspace chars. */
    static boolean isSpace(int cp) {
        return Text.isWhitespace(cp) || (cp >= 0x1C && cp <= 0x1F);
    }

    static String strip(String s, String chars, boolean left, boolean right) {
        int start = 0;
        int end = s.length();
        while (left && start < end && (chars == null ? isSpace(s.codePointAt(start)) : chars.indexOf(s.codePointAt(start)) >= 0)) {
            start += Character.charCount(s.codePointAt(start));
        }
        while (right && end > start && (chars == null ? isSpace(s.codePointBefore(end)) : chars.indexOf(s.codePointBefore(end)) >= 0)) {
            end -= Character.charCount(s.codePointBefore(end));
        }
        return s.substring(start, end);
    }

    static List<String> split(String s, String sep, int maxSplit) {
        List<String> out = new ArrayList<>();
        if (sep == null) {
            int i = 0;
            while (i < s.length()) {
                while (i < s.length() && isSpace(s.codePointAt(i))) i += Character.charCount(s.codePointAt(i));
                if (i >= s.length()) break;
                if (maxSplit >= 0 && out.size() == maxSplit) {
                    out.add(strip(s.substring(i), null, false, true));
                    return out;
                }
                int j = i;
                while (j < s.length() && !isSpace(s.codePointAt(j))) j += Character.charCount(s.codePointAt(j));
                out.add(s.substring(i, j));
                i = j;
            }
            return out;
        }
        if (sep.isEmpty()) throw new aya.AyaException("chat template: empty separator in split()");
        int from = 0;
        while (maxSplit < 0 || out.size() < maxSplit) {
            int k = s.indexOf(sep, from);
            if (k < 0) break;
            out.add(s.substring(from, k));
            from = k + sep.length();
        }
        out.add(s.substring(from));
        return out;
    }

    /** str.splitlines(): no trailing empty line. */
    static List<String> splitlines(String s) {
        List<String> out = new ArrayList<>();
        int start = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            boolean br = c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || (c >= 0x1C && c <= 0x1E) || c == 0x85
                    || c == 0x2028 || c == 0x2029;
            if (!br) continue;
            out.add(s.substring(start, i));
            if (c == '\r' && i + 1 < s.length() && s.charAt(i + 1) == '\n') i++;
            start = i + 1;
        }
        if (start < s.length()) out.add(s.substring(start));
        return out;
    }

    private static boolean anyOf(Object prefixes, java.util.function.Predicate<String> test) {
        if (prefixes instanceof Collection<?> c) {
            for (Object p : c) if (test.test(String.valueOf(p))) return true;
            return false;
        }
        return test.test(String.valueOf(prefixes));
    }

    static String title(String s) {
        StringBuilder out = new StringBuilder(s.length());
        boolean previousCased = false;
        for (int i = 0; i < s.length(); ) {
            int cp = s.codePointAt(i);
            i += Character.charCount(cp);
            boolean cased = Character.isUpperCase(cp) || Character.isLowerCase(cp) || Character.isTitleCase(cp);
            if (cased) out.appendCodePoint(previousCased ? Character.toLowerCase(cp) : Character.toTitleCase(cp));
            else out.appendCodePoint(cp);
            previousCased = cased;
        }
        return out.toString();
    }

    private static String replace(String s, String old, String with, int count) {
        if (count < 0) return s.replace(old, with);
        StringBuilder out = new StringBuilder();
        int from = 0;
        for (int n = 0; n < count; n++) {
            int k = s.indexOf(old, from);
            if (k < 0) break;
            out.append(s, from, k).append(with);
            from = k + old.length();
            if (old.isEmpty()) {
                if (from < s.length()) out.append(s.charAt(from));
                from++;
            }
        }
        if (from <= s.length()) out.append(s.substring(Math.min(from, s.length())));
        return out.toString();
    }

    private static long count(String s, String sub) {
        if (sub.isEmpty()) return s.codePointCount(0, s.length()) + 1;
        long n = 0;
        for (int k = s.indexOf(sub); k >= 0; k = s.indexOf(sub, k + sub.length())) n++;
        return n;
    }

    private static String join(String sep, Object items) {
        List<String> parts = new ArrayList<>();
        if (items instanceof Iterable<?> it) for (Object o : it) parts.add(String.valueOf(o));
        else parts.add(String.valueOf(items));
        return String.join(sep, parts);
    }

    /** json.dumps(v, ensure_ascii=False) with Python's default ", " / ": " separators. */
    static void json(Object v, StringBuilder sb) {
        if (v == null || v == ChatTemplate.PyNone.NONE) {
            sb.append("null");
        } else if (v instanceof Boolean b) {
            sb.append(b ? "true" : "false");
        } else if (v instanceof Double || v instanceof Float) {
            double d = ((Number) v).doubleValue();
            sb.append(d == Math.rint(d) && !Double.isInfinite(d) && Math.abs(d) < 1e16 ? String.format("%.1f", d) : Double.toString(d));
        } else if (v instanceof Number n) {
            sb.append(n);
        } else if (v instanceof Map<?, ?> m) {
            sb.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : m.entrySet()) {
                if (!first) sb.append(", ");
                first = false;
                JsonText.appendString(sb, String.valueOf(e.getKey()));
                sb.append(": ");
                json(e.getValue(), sb);
            }
            sb.append('}');
        } else if (v instanceof Iterable<?> it) {
            sb.append('[');
            boolean first = true;
            for (Object o : it) {
                if (!first) sb.append(", ");
                first = false;
                json(o, sb);
            }
            sb.append(']');
        } else {
            JsonText.appendString(sb, v.toString());
        }
    }

    /** A subset of C strftime: %Y %y %m %d %e %H %I %M %S %p %B %b %A %a %j %%, and %-d style unpadded fields. */
    static String strftime(LocalDateTime t, String format) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < format.length(); i++) {
            char c = format.charAt(i);
            if (c != '%' || i + 1 >= format.length()) {
                out.append(c);
                continue;
            }
            char f = format.charAt(++i);
            boolean pad = true;
            if (f == '-' && i + 1 < format.length()) {
                pad = false;
                f = format.charAt(++i);
            }
            switch (f) {
                case 'Y' -> out.append(t.getYear());
                case 'y' -> out.append(two(t.getYear() % 100, pad));
                case 'm' -> out.append(two(t.getMonthValue(), pad));
                case 'd' -> out.append(two(t.getDayOfMonth(), pad));
                case 'e' -> out.append(String.format("%2d", t.getDayOfMonth()));
                case 'H' -> out.append(two(t.getHour(), pad));
                case 'I' -> out.append(two(t.getHour() % 12 == 0 ? 12 : t.getHour() % 12, pad));
                case 'M' -> out.append(two(t.getMinute(), pad));
                case 'S' -> out.append(two(t.getSecond(), pad));
                case 'p' -> out.append(t.getHour() < 12 ? "AM" : "PM");
                case 'B' -> out.append(t.getMonth().getDisplayName(TextStyle.FULL, Locale.ENGLISH));
                case 'b' -> out.append(t.getMonth().getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
                case 'A' -> out.append(t.getDayOfWeek().getDisplayName(TextStyle.FULL, Locale.ENGLISH));
                case 'a' -> out.append(t.getDayOfWeek().getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
                case 'j' -> out.append(pad ? String.format("%03d", t.getDayOfYear()) : String.valueOf(t.getDayOfYear()));
                case '%' -> out.append('%');
                default -> out.append('%').append(f);
            }
        }
        return out.toString();
    }

    private static String two(int v, boolean pad) {
        return pad ? String.format("%02d", v) : String.valueOf(v);
    }
}
