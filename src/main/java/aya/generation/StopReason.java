package aya.generation;

/** Why a generation ended. */
public enum StopReason {
    /** The model produced one of its end tokens (not part of the output). */
    END_TOKEN,
    /** The text contained a stop string (cut before it). */
    STOP_STRING,
    /** The requested number of tokens was generated. */
    MAX_TOKENS,
    /** The KV cache is full: no room for another token. */
    CONTEXT_FULL,
    /** The caller cancelled it (a scheduler request). */
    CANCELLED,
}
