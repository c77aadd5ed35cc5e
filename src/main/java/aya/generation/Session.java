package aya.generation;

import aya.AyaException;
import aya.model.AyaForward;
import aya.sampling.Sampler;
import aya.tokenizer.ChatTemplate;
import aya.tokenizer.StreamingDecoder;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;

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
        long start = System.nanoTime();
        if (prompt.length == 0) throw new AyaException("the prompt is empty: nothing to continue");
        if (prompt.length > state.context()) {
            throw new AyaException("the prompt has " + prompt.length + " tokens, more than the context of "
                    + state.context() + " (raise --context, or shorten the prompt)");
        }
        int reused = reuseCache(prompt);
        MemorySegment logits = model.forward().forward(state, Arrays.copyOfRange(prompt, reused, prompt.length));
        remember(prompt, reused, prompt.length);
        long prefillEnd = System.nanoTime();

        Sampler sampler = new Sampler(settings.sampling(), model.samplingVocab(), state.context());
        for (int id : prompt) sampler.accept(id); // the repeat penalty sees the prompt too, as in llama.cpp

        // UTF-8 safe: holds back a character's bytes until it is complete; special tokens are not text
        var decoder = model.hasTokenizer() ? new StreamingDecoder(model.tokenizer(), true) : null;
        StopStrings stops = new StopStrings(settings.stopStrings());
        StringBuilder text = new StringBuilder();
        int[] out = new int[Math.min(settings.maxTokens(), 1024)];
        int n = 0;
        long firstToken = 0;
        StopReason reason = StopReason.MAX_TOKENS;
        int endToken = -1;
        while (n < settings.maxTokens()) {
            int next = sampler.sample(logits);
            if (n == 0) firstToken = System.nanoTime();
            if (!settings.ignoreEos() && model.isEndToken(next)) {
                reason = StopReason.END_TOKEN;
                endToken = next;
                break;
            }
            if (n == out.length) out = Arrays.copyOf(out, Math.min(settings.maxTokens(), 2 * n));
            out[n++] = next;
            String piece = decoder == null ? "" : stops.push(decoder.accept(next));
            text.append(piece);
            listener.onToken(next, piece);
            if (stops.stopped()) {
                reason = StopReason.STOP_STRING;
                break;
            }
            if (n == settings.maxTokens()) break;
            if (state.position() == state.context()) {
                reason = StopReason.CONTEXT_FULL; // this token cannot be fed: no room for its keys and values
                break;
            }
            logits = model.forward().forward(state, new int[] {next});
            remember(new int[] {next}, 0, 1);
        }
        long end = System.nanoTime();
        if (decoder != null && reason != StopReason.STOP_STRING) {
            String rest = stops.push(decoder.finish());
            if (stops.stopped()) reason = StopReason.STOP_STRING;
            rest += stops.finish();
            if (!rest.isEmpty()) {
                text.append(rest);
                listener.onToken(-1, rest);
            }
        }
        if (n == 0) firstToken = end;
        return new GenerationResult(Arrays.copyOf(out, n), text.toString(), reason, endToken, prompt.length, reused,
                prefillEnd - start, firstToken - start, n == 0 ? 0 : end - firstToken);
    }

    /**
     * Keeps the cached ids that start {@code prompt} (at least one prompt token is always processed: its logits are
     * needed) and returns how many. Falls back to an empty cache when the sliding-window rings cannot rewind.
     */
    private int reuseCache(int[] prompt) {
        int have = state.position();
        int common = 0;
        int limit = Math.min(have, prompt.length - 1);
        while (common < limit && cached[common] == prompt[common]) common++;
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
