package aya.generation;

import java.io.PrintStream;

/** Receives each generated token as it is made, with the text it completes (may be "" mid-character or while a
 * possible stop string is held back). */
@FunctionalInterface
public interface TokenListener {
    /**
     * One generated token.
     *
     * @param id   the token id, or -1 for text released when the generation ends (a held-back partial stop string)
     * @param text the text this token completes; may be empty
     */
    void onToken(int id, String text);

    /** Ignores every token. */
    TokenListener NONE = (id, text) -> { };

    /** Prints the text as it comes, flushing after each token (streams to a console). */
    static TokenListener printTo(PrintStream out) {
        return (id, text) -> {
            out.print(text);
            out.flush();
        };
    }
}
