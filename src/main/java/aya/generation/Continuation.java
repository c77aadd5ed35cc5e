package aya.generation;

import aya.sampling.Sampler;
import aya.tokenizer.StreamingDecoder;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * The tokens one generation makes and the rules that end it, given one row of logits at a time: sampling (with
 * the prompt seen by the repeat penalty), end tokens, max tokens, stop strings, a full context, and the streamed
 * text (whole UTF-8 characters, stop-string starts held back). {@link Session} and {@link Scheduler} both feed it,
 * so a request gives the same ids and text whichever runs it. Not thread-safe: one per generation.
 */
final class Continuation {

    private final AyaModel model;
    private final GenerationSettings settings;
    private final Sampler sampler;
    private final StreamingDecoder decoder; // null without a tokenizer (ids only)
    private final StopStrings stops;
    private final StringBuilder text = new StringBuilder();
    private int[] out;
    private int n;                          // tokens generated
    private long firstToken, end;
    private StopReason reason = StopReason.MAX_TOKENS;
    private int endToken = -1;
    private boolean finished;

    Continuation(AyaModel model, int[] prompt, GenerationSettings settings, int context) {
        this.model = model;
        this.settings = settings;
        this.sampler = new Sampler(settings.sampling(), model.samplingVocab(), context);
        for (int id : prompt) sampler.accept(id); // the repeat penalty sees the prompt too, as in llama.cpp
        // UTF-8 safe: holds back a character's bytes until it is complete; special tokens are not text
        this.decoder = model.hasTokenizer() ? new StreamingDecoder(model.tokenizer(), true) : null;
        this.stops = new StopStrings(settings.stopStrings());
        this.out = new int[Math.min(settings.maxTokens(), 1024)];
    }

    /**
     * The next token from the logits of the last fed one, with the text it completes; null when the generation
     * ended without one (max tokens already reached, or an end token). {@code position} is the number of tokens in
     * the KV cache, {@code context} its size: a token that could not be fed ends the generation (CONTEXT_FULL).
     * After the call, {@link #finished()} tells whether the returned token must be fed to continue.
     */
    Session.Token next(MemorySegment logits, int position, int context) {
        if (finished) return null;
        if (n == settings.maxTokens()) {
            finish(StopReason.MAX_TOKENS);
            return null;
        }
        int id = sampler.sample(logits);
        if (n == 0) firstToken = System.nanoTime();
        if (!settings.ignoreEos() && model.isEndToken(id)) {
            endToken = id;
            finish(StopReason.END_TOKEN);
            return null;
        }
        if (n == out.length) out = Arrays.copyOf(out, Math.min(settings.maxTokens(), 2 * n));
        out[n++] = id;
        String piece = decoder == null ? "" : stops.push(decoder.accept(id));
        text.append(piece);
        if (stops.stopped()) {
            finish(StopReason.STOP_STRING);
        } else if (n == settings.maxTokens()) {
            finish(StopReason.MAX_TOKENS);
        } else if (position == context) {
            finish(StopReason.CONTEXT_FULL); // this token cannot be fed: no room for its keys and values
        }
        return new Session.Token(id, piece);
    }

    /** Ends the generation early (the caller stopped it); the held-back text is dropped. */
    void cancel() {
        finish(StopReason.CANCELLED);
    }

    /** Once finished: the text held back until the end (an incomplete character, a stop-string start that was not one). */
    String releaseHeldText() {
        if (decoder == null || reason == StopReason.STOP_STRING || reason == StopReason.CANCELLED) return "";
        String rest = stops.push(decoder.finish());
        if (stops.stopped()) reason = StopReason.STOP_STRING;
        rest += stops.finish();
        text.append(rest);
        return rest;
    }

    private void finish(StopReason why) {
        reason = why;
        finished = true;
        end = System.nanoTime();
    }

    boolean finished() {
        return finished;
    }

    int[] ids() {
        return Arrays.copyOf(out, n);
    }

    int generated() {
        return n;
    }

    String text() {
        return text.toString();
    }

    StopReason reason() {
        return reason;
    }

    int endToken() {
        return endToken;
    }

    /** System.nanoTime() of the first token (of the end, when none was made). */
    long firstTokenNanos() {
        return n == 0 ? end : firstToken;
    }

    /** System.nanoTime() when the generation ended. */
    long endNanos() {
        return end;
    }
}
