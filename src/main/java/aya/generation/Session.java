package aya.generation;

import aya.AyaException;
import aya.model.AyaForward;
import aya.tokenizer.ChatTemplate;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;

/**
 * One conversation with a loaded model: its own KV cache (native memory, freed by {@link #close()}) and the ids it
 * holds. Many sessions can share one {@link AyaModel} from different threads; one session is used by one thread at
 * a time.
 *
 * <p>Each {@link #generate} reuses the cache: the longest common prefix of the new prompt and the ids already in the
 * cache is kept and only the rest is processed. A chat feeds its whole rendered conversation each turn, so earlier
 * turns are not processed again; if the new rendering does not start with what the cache holds (a template that
 * rewrites earlier turns), the cache rewinds to where they differ, or, when the sliding-window ring cannot rewind
 * that far, starts over with a full prefill ({@link GenerationResult#reusedTokens()} tells which happened).
 */
public final class Session implements AutoCloseable {

    private final AyaModel model;
    private final AyaForward.State state;
    private int[] cached = new int[256]; // ids whose keys/values are in the cache: [0, state.position())

    Session(AyaModel model, AyaForward.State state) {
        this.model = model;
        this.state = state;
    }

    /** Positions this session can hold (prompt + generated tokens). */
    public int context() {
        return state.context();
    }

    /** Tokens currently in the KV cache. */
    public int position() {
        return state.position();
    }

    /** The ids in the KV cache, in order. */
    public int[] cachedIds() {
        return Arrays.copyOf(cached, state.position());
    }

    /** Forgets everything (the next generate processes its whole prompt). */
    public void reset() {
        state.reset();
    }

    /** Generates from a raw text prompt, tokenized as HF {@code encode} does (with BOS). */
    public GenerationResult generate(String prompt, GenerationSettings settings, TokenListener listener) {
        return generate(model.tokenizer().encode(prompt, true), settings, listener);
    }

    /**
     * Generates the assistant's next reply to a conversation rendered with the model's chat template (the
     * generation prompt added). Call it again with the reply and the next user message appended: only what is new
     * is processed.
     */
    public GenerationResult chat(List<ChatTemplate.Message> messages, GenerationSettings settings, TokenListener listener) {
        ChatTemplate template = model.chatTemplate().orElseThrow(() ->
                new AyaException(model.directory() + " has no chat template (a base model): use generate"));
        return generate(template.encodeChat(messages, true), settings, listener);
    }

    /**
     * Generates a continuation of {@code prompt}. Each token is passed to {@code listener} as it is made, with the
     * text it completes; at the end the listener gets id -1 with the text held back until then (incomplete
     * characters, a possible stop-string start that was not one), if any. End tokens stop generation and are
     * neither in the result nor given to the listener (unless {@code ignoreEos}). Only ids the tokenizer defines
     * are ever chosen.
     *
     * @throws AyaException before any work if the prompt does not fit the context
     */
    public GenerationResult generate(int[] prompt, GenerationSettings settings, TokenListener listener) {
        Generation g = start(prompt, settings);
        while (g.hasNext()) {
            Token t = g.next();
            listener.onToken(t.id(), t.text());
        }
        return g.result();
    }

    /** One generated token and the text it completes; id -1 is the text released at the end (see generate). */
    public record Token(int id, String text) {
    }

    /**
     * Starts a generation and returns it as an iterator of tokens: the prompt is processed now, each
     * {@code next()} makes one token (pull instead of the callback of {@link #generate}); {@link Generation#result()}
     * once {@code hasNext()} is false. Stopping the iteration early is fine (the session stays usable).
     *
     * @throws AyaException before any work if the prompt does not fit the context
     */
    public Generation start(int[] prompt, GenerationSettings settings) {
        return new Generation(prompt, settings);
    }

    /** A generation in progress: an iterator of {@link Token}s. */
    public final class Generation implements Iterator<Token> {
        private final long start = System.nanoTime();
        private final long prefillEnd;
        private final int promptTokens;
        private final int reused;
        private final Continuation continuation;
        private MemorySegment logits;           // of the last fed token
        private int toFeed = -1;                // the last generated token, fed before the next one is chosen
        private boolean done;                   // no more tokens, and the held-back text has been released
        private Token pending;

        private Generation(int[] prompt, GenerationSettings settings) {
            if (prompt.length == 0) throw new AyaException("the prompt is empty: nothing to continue");
            if (prompt.length > state.context()) {
                throw new AyaException("the prompt has " + prompt.length + " tokens, more than the context of "
                        + state.context() + " (raise --context, or shorten the prompt)");
            }
            this.promptTokens = prompt.length;
            this.reused = reuseCache(prompt);
            this.logits = model.forward().forward(state, Arrays.copyOfRange(prompt, reused, prompt.length));
            remember(prompt, reused, prompt.length);
            this.prefillEnd = System.nanoTime();
            this.continuation = new Continuation(model, prompt, settings, state.context());
        }

        @Override
        public boolean hasNext() {
            if (pending == null && !done) pending = advance();
            return pending != null;
        }

        @Override
        public Token next() {
            if (!hasNext()) throw new NoSuchElementException("the generation has ended");
            Token t = pending;
            pending = null;
            return t;
        }

        private Token advance() {
            if (!continuation.finished()) {
                if (toFeed >= 0) {
                    logits = model.forward().forward(state, new int[] {toFeed});
                    remember(new int[] {toFeed}, 0, 1);
                    toFeed = -1;
                }
                Token t = continuation.next(logits, state.position(), state.context());
                if (t != null) {
                    if (!continuation.finished()) toFeed = t.id();
                    return t;
                }
            }
            done = true;
            String rest = continuation.releaseHeldText();
            return rest.isEmpty() ? null : new Token(-1, rest);
        }

        /** What was generated; only once the iteration has ended. */
        public GenerationResult result() {
            if (hasNext()) throw new IllegalStateException("the generation has not ended yet");
            Continuation c = continuation;
            long first = c.firstTokenNanos();
            return new GenerationResult(c.ids(), c.text(), c.reason(), c.endToken(), promptTokens, reused,
                    prefillEnd - start, first - start, c.generated() == 0 ? 0 : c.endNanos() - first);
        }
    }

    /**
     * Keeps the cached ids that start {@code prompt} (at least one prompt token is always processed: its logits are
     * needed) and returns how many. Falls back to an empty cache when the sliding-window rings cannot rewind.
     */
    private int reuseCache(int[] prompt) {
        return rewindToCommonPrefix(state, cached, prompt);
    }

    /**
     * Rewinds {@code state}, whose KV cache holds {@code cachedIds[0, state.position())}, to the longest prefix it
     * shares with {@code prompt} (at most prompt.length - 1 tokens) and returns that length; resets it and returns 0
     * when the sliding-window rings cannot rewind that far.
     */
    static int rewindToCommonPrefix(AyaForward.State state, int[] cachedIds, int[] prompt) {
        int have = state.position();
        int common = PromptCache.commonPrefix(cachedIds, prompt, Math.min(have, prompt.length - 1));
        if (common < have) {
            try {
                state.rewind(common);
            } catch (IllegalArgumentException e) {
                state.reset(); // the rings no longer hold the keys before the rewind point: prefill again
                common = 0;
            }
        }
        return common;
    }

    private void remember(int[] ids, int from, int to) {
        int pos = state.position() - (to - from);
        if (state.position() > cached.length) cached = Arrays.copyOf(cached, Math.max(state.position(), 2 * cached.length));
        System.arraycopy(ids, from, cached, pos, to - from);
    }

    /** Frees the KV cache. */
    @Override
    public void close() {
        state.close();
    }
}
