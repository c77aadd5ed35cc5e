package aya.config;

import aya.AyaException;

import java.util.List;
import java.util.Map;

/**
 * The metadata of a GGUF file (see aya.weights.GgufFile) with typed access: every wrong or missing value is a
 * one-line error naming the file and the key.
 *
 * @param source the file, for error messages
 * @param values key to value: {@code Long} (every integer type), {@code Double}, {@code Boolean}, {@code String}, or a
 *               {@code List} of those
 */
public record GgufMetadata(String source, Map<String, Object> values) {

    public boolean has(String key) {
        return values.containsKey(key);
    }

    /** The string at {@code key}, or null when absent; a value of another type is an error naming the key. */
    public String string(String key) {
        Object v = values.get(key);
        if (v == null) return null;
        if (!(v instanceof String s)) throw typeError(key, "a string", v);
        return s;
    }

    /** The integer at {@code key} as a non-negative int, or {@code dflt} when absent. */
    public int integer(String key, int dflt) {
        Object v = values.get(key);
        if (v == null) return dflt;
        if (!(v instanceof Long l) || l < 0 || l > Integer.MAX_VALUE) throw typeError(key, "a non-negative integer below 2^31", v);
        return (int) (long) l;
    }

    /** The integer at {@code key}, which must be present and positive. */
    public int positive(String key) {
        if (!values.containsKey(key)) throw new AyaException(source + ": metadata '" + key + "' is missing");
        int n = integer(key, 0);
        if (n <= 0) throw typeError(key, "a positive integer", values.get(key));
        return n;
    }

    /** The number (integer or float) at {@code key}, or {@code dflt} when absent. */
    public double number(String key, double dflt) {
        Object v = values.get(key);
        if (v == null) return dflt;
        if (v instanceof Double d) return d;
        if (v instanceof Long l) return l;
        throw typeError(key, "a number", v);
    }

    /** The bool at {@code key}, or {@code dflt} when absent. */
    public boolean bool(String key, boolean dflt) {
        Object v = values.get(key);
        if (v == null) return dflt;
        if (!(v instanceof Boolean b)) throw typeError(key, "a bool", v);
        return b;
    }

    /** The array at {@code key} whose elements are all of {@code type}, or null when absent. */
    public <T> List<T> array(String key, Class<T> type) {
        Object v = values.get(key);
        if (v == null) return null;
        if (!(v instanceof List<?> list)) throw typeError(key, "an array", v);
        for (Object e : list) {
            if (!type.isInstance(e)) {
                throw new AyaException(source + ": metadata '" + key + "' must be an array of " + type.getSimpleName().toLowerCase()
                        + ", it holds a " + e.getClass().getSimpleName().toLowerCase());
            }
        }
        @SuppressWarnings("unchecked") List<T> typed = (List<T>) list;
        return typed;
    }

    private AyaException typeError(String key, String expected, Object got) {
        String shown = got instanceof List<?> l ? "an array of " + l.size()
                : got instanceof String s ? "'" + shorten(s) + "'" : String.valueOf(got);
        return new AyaException(source + ": metadata '" + key + "' must be " + expected + ", got " + shown);
    }

    private static String shorten(String s) {
        String one = s.replace('\n', ' ').replace('\r', ' ');
        return one.length() > 60 ? one.substring(0, 60) + "..." : one;
    }
}
