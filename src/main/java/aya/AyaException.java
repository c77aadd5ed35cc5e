package aya;

/**
 * An error the user can fix (bad file, bad flag, bad input): the CLI prints its one-line message and
 * exits with code 2, without a stack trace unless --verbose. Messages name the file/tensor/value and the problem.
 * Messages often quote untrusted text (a shard name, a token, a flag value), so line breaks and other control
 * characters in them are escaped here: the message is one line by construction.
 */
public class AyaException extends RuntimeException {
    public AyaException(String message) {
        super(oneLine(message));
    }

    public AyaException(String message, Throwable cause) {
        super(oneLine(message), cause);
    }

    static String oneLine(String message) {
        if (message == null) return null;
        StringBuilder sb = null;
        for (int i = 0; i < message.length(); i++) {
            char c = message.charAt(i);
            boolean breaks = (Character.isISOControl(c) && c != '\t') || c == '\u2028' || c == '\u2029';
            if (breaks && sb == null) sb = new StringBuilder(message.length() + 8).append(message, 0, i);
            if (sb == null) continue;
            if (!breaks) sb.append(c);
            else if (c == '\n') sb.append("\\n");
            else if (c == '\r') sb.append("\\r");
            else sb.append(String.format("\\u%04x", (int) c));
        }
        return sb == null ? message : sb.toString();
    }
}
