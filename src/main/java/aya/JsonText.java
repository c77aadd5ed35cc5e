package aya;

/** JSON text written by hand where a whole JSON library would be more than the job needs. */
public final class JsonText {

    private JsonText() {
    }

    /**
     * s as a JSON string literal appended to sb, escaped as Python's {@code json.dumps(s, ensure_ascii=False)} does
     * (what chat templates' {@code tojson} prints): the quote, the backslash and the control characters; the rest as is.
     */
    public static void appendString(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                case '\b' -> sb.append("\\b");
                case '\f' -> sb.append("\\f");
                default -> {
                    if (c < 0x20) sb.append(String.format("\\u%04x", (int) c));
                    else sb.append(c);
                }
            }
        }
        sb.append('"');
    }
}
