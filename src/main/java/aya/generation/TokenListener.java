package aya.generation;

/** Receives each generated token as it is made, with the text it completes (may be "" mid-character or while a
 * possible stop string is held back). */
@FunctionalInterface
public interface TokenListener {
    void onToken(int id, String text);

    TokenListener NONE = (id, text) -> { };
}
