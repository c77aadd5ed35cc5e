package aya.generation;

import aya.AyaException;
import aya.model.AyaForward;
import aya.model.MemoryLimits;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Continuous batching: one thread owns the model and, step after step, runs every active request together in one
 * batched forward pass ({@link AyaForward#forward(AyaForward.Scratch, List, AyaForward.BatchLogitsSink)}), so the
 * weights are read once per step for all of them. Requests join at the next step and leave as soon as they end.
 *
 * <p>Each step: admit queued requests into free slots (up to {@code parallel}); build one batch of every decoding
 * request's last token plus the next prompt chunk of the prefilling ones; run it; sample each request with its own
 * sampler and settings ({@link Continuation}, exactly as {@link Session} does, so a request gives what
 * {@link Session#generate} gives for the same prompt and settings, to the rounding of a differently sized product).
 * Prefilling requests share a budget of {@code prefillChunk} prompt tokens per step, in arrival order, so a long
 * prompt never stalls the requests that are decoding for more than one chunk's time.
 *
 * <p>Prompt cache: a finished request's KV state stays in RAM (LRU within {@code cacheRamBytes}); a new request
 * takes the cached state sharing the longest prefix with its prompt and prefills only the rest.
 *
 * <p>Listeners are called on the scheduler thread, between steps: they must return quickly (hand the text to
 * another thread's buffer), or every request waits for them.
 */
public final class Scheduler implements AutoCloseable {

    public static final int DEFAULT_PARALLEL = 4;
    public static final int DEFAULT_QUEUE_CAPACITY = 64;
    public static final int DEFAULT_PREFILL_CHUNK = 256;
    /** Sequences one step may hold at most (a sanity bound on --parallel). */
    public static final int MAX_PARALLEL = 256;

    /**
     * @param parallel      max sequences stepped together (--parallel)
     * @param context       positions per sequence, prompt + generated (--context)
     * @param queueCapacity requests that may wait for a slot before submit refuses
     * @param cacheRamBytes prompt-cache budget (--cache-ram), LRU over whole KV states; 0 = off
     * @param prefillChunk  prompt tokens prefilled per step (shared by the prefilling requests)
     */
    public record Options(int parallel, int context, int queueCapacity, long cacheRamBytes, int prefillChunk) {
        public Options {
            if (parallel < 1 || parallel > MAX_PARALLEL) {
                throw new AyaException("--parallel must be between 1 and " + MAX_PARALLEL + ", got " + parallel);
            }
            if (context < 2) throw new AyaException("--context must be at least 2 (a prompt token and a reply token), got " + context);
            if (queueCapacity < 0) throw new AyaException("the queue capacity must be >= 0, got " + queueCapacity);
            if (cacheRamBytes < 0) throw new AyaException("--cache-ram must be >= 0 (0 = off), got " + cacheRamBytes);
            if (prefillChunk < 1) throw new AyaException("the prefill chunk must be at least 1 token, got " + prefillChunk);
        }

        /** The defaults with this context: 4 parallel, 64 queued, no prompt cache, chunks of 256. */
        public static Options defaults(int context) {
            return new Options(DEFAULT_PARALLEL, context, DEFAULT_QUEUE_CAPACITY, 0, DEFAULT_PREFILL_CHUNK);
        }
    }

    /** What a request hears, on the scheduler thread: must return quickly (see the class comment). */
    public interface Listener {
        /**
         * A generated token and the text it completes (whole UTF-8 characters; a possible stop string held back).
         * As with {@link TokenListener}, id -1 at the end carries text held back until then.
         */
        void onToken(int id, String text);

        /** Exactly once when the request ends, unless {@link #onError} is called instead. */
        void onDone(Completion c);

        /** Exactly once instead of onDone when the request failed (e.g. a weight file changed on disk). */
        void onError(RuntimeException e);
    }

    /**
     * A finished request.
     *
     * @param ids                generated ids, without the end token that stopped them
     * @param text               their text, cut before a stop string
     * @param promptTokens       tokens of the prompt
     * @param cachedPromptTokens prompt tokens whose KV came from the prompt cache (not prefilled again)
     * @param queuedNanos        from submit until a slot took it
     * @param promptNanos        from taking a slot to the first generated token (queued + prompt = time to first token)
     * @param generationNanos    from the first generated token to the end
     */
    public record Completion(int[] ids, String text, StopReason reason, int promptTokens, int cachedPromptTokens,
                             long queuedNanos, long promptNanos, long generationNanos) {
    }

    /** A submitted request. */
    public interface Request {
        /** Stops it at the next step (or takes it out of the queue); its listener gets onDone with CANCELLED. */
        void cancel();

        /** True once its listener got onDone or onError. */
        boolean done();
    }

    /**
     * A snapshot for monitoring.
     *
     * @param active             requests in slots
     * @param queued             requests waiting for a slot
     * @param steps              batched forward passes run
     * @param stepRowsTotal      rows (tokens) over all steps: stepRowsTotal / steps is the mean batch size
     * @param promptTokens       prompt tokens prefilled (cached ones not counted)
     * @param completionTokens   tokens generated
     * @param cacheHits          requests that reused a cached KV state
     * @param cachedTokensReused prompt tokens those requests did not prefill
     * @param lastBatchRows      rows of the last step
     */
    public record Stats(int active, int queued, long steps, long stepRowsTotal, long promptTokens, long completionTokens,
                        long cacheHits, long cachedTokensReused, double lastBatchRows) {
    }

    private final AyaModel model;
    private final AyaForward forward;
    private final Options options;
    private final int context;                // options.context (checked against the model's limit)
    private final int prefillChunk;           // options.prefillChunk, at most the context
    private final AyaForward.Scratch scratch; // activations for parallel decode rows + one prefill chunk
    private final PromptCache cache;          // null when off
    private final Thread thread;

    // shared with submitting threads, under lock
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition wake = lock.newCondition();
    private final ArrayDeque<Job> queue = new ArrayDeque<>();
    private int admitted;                     // requests in slots (active on the scheduler thread)
    private boolean stopping;                 // shutdown called: submit refuses
    private boolean graceSet;                 // shutdown gave a deadline:
    private long cancelAllAt;                 // System.nanoTime() after which in-flight requests are cancelled

    // the scheduler thread's own
    private final List<Job> active = new ArrayList<>();
    private final ArrayDeque<AyaForward.State> free = new ArrayDeque<>(); // reset states of no request
    private volatile long steps, stepRows, promptTokens, completionTokens, cacheHits, cachedTokensReused;
    private volatile int lastBatchRows;

    /**
     * Starts the scheduler thread. Allocates the batch activations now; each slot's KV state on first use. Refuses
     * (one-line AyaException) a context beyond the model's, or slots + prompt cache that do not fit in memory.
     */
    public Scheduler(AyaModel model, Options options) {
        this.model = model;
        this.forward = model.forward();
        this.options = options;
        int maxContext = model.config().maxPositionEmbeddings();
        if (options.context() > maxContext) {
            throw new AyaException("a context of " + options.context() + " tokens is more than the model's max_position_embeddings ("
                    + maxContext + ")");
        }
        this.context = options.context();
        this.prefillChunk = Math.min(options.prefillChunk(), context);
        int rows = options.parallel() + prefillChunk;
        long stateBytes = forward.batchStateBytes(context, prefillChunk);
        long slotBytes = options.parallel() * stateBytes;
        long scratchBytes = forward.scratchBytes(rows, context);
        if (options.cacheRamBytes() > 0 && options.cacheRamBytes() < stateBytes) {
            throw new AyaException("--cache-ram of " + mib(options.cacheRamBytes()) + " cannot hold one sequence's KV cache ("
                    + mib(stateBytes) + " at a context of " + context + "): raise it, or 0 to turn the prompt cache off");
        }
        long need = slotBytes + options.cacheRamBytes() + scratchBytes;
        long available = MemoryLimits.limitBytes();
        if (need > available || need < 0) {
            throw new AyaException("--parallel " + options.parallel() + " at a context of " + context + " needs " + mib(slotBytes)
                    + " of KV cache + " + mib(options.cacheRamBytes()) + " of prompt cache + " + mib(scratchBytes)
                    + " of activations, but only " + mib(available) + " is available: lower --parallel, --context or --cache-ram");
        }
        this.scratch = forward.newScratch(rows, context);
        this.cache = options.cacheRamBytes() > 0 ? new PromptCache(options.cacheRamBytes()) : null;
        this.thread = new Thread(this::loop, "aya-scheduler");
        thread.setDaemon(true);
        thread.start();
    }

    public Options options() {
        return options;
    }

    /**
     * Queues a generation and returns at once; the listener hears its tokens from the scheduler thread.
     *
     * @throws QueueFullException when every slot is busy and {@code queueCapacity} requests already wait
     * @throws AyaException       (one line) when the prompt is empty, has an id outside the vocabulary, or does not
     *                            leave room for one generated token in the context; or after shutdown
     */
    public Request submit(int[] prompt, GenerationSettings settings, Listener listener) {
        if (prompt.length == 0) throw new AyaException("the prompt is empty: nothing to continue");
        if (prompt.length + 1 > context) {
            throw new AyaException("the prompt has " + prompt.length + " tokens: with one generated token that is more than the context of "
                    + context + " (shorten the prompt, or raise --context)");
        }
        int vocab = model.config().vocabSize();
        for (int i = 0; i < prompt.length; i++) {
            if (prompt[i] < 0 || prompt[i] >= vocab) {
                throw new AyaException("token id " + prompt[i] + " (prompt position " + i + ") is out of range: vocab_size is " + vocab);
            }
        }
        Job job = new Job(prompt.clone(), settings, listener);
        lock.lock();
        try {
            if (stopping) throw new AyaException("the scheduler is shutting down: no new requests");
            if (queue.size() + admitted >= options.parallel() + options.queueCapacity()) {
                throw new QueueFullException("the server is busy: " + admitted + " requests running and " + queue.size()
                        + " waiting (queue capacity " + options.queueCapacity() + "); retry later");
            }
            queue.addLast(job);
            wake.signal();
        } finally {
            lock.unlock();
        }
        return job;
    }

    public Stats stats() {
        int act, queued;
        lock.lock();
        try {
            act = admitted;
            queued = queue.size();
        } finally {
            lock.unlock();
        }
        return new Stats(act, queued, steps, stepRows, promptTokens, completionTokens, cacheHits, cachedTokensReused, lastBatchRows);
    }

    /**
     * Stops accepting requests (submit throws), lets the queued and running ones finish, cancels those still running
     * after {@code graceMillis} (onDone with CANCELLED), waits for the scheduler thread and frees every KV state.
     */
    public void shutdown(long graceMillis) {
        lock.lock();
        try {
            stopping = true;
            long deadline = System.nanoTime() + Math.min(Math.max(0, graceMillis), 1L << 40) * 1_000_000L;
            if (!graceSet || deadline - cancelAllAt < 0) cancelAllAt = deadline; // an earlier shutdown's grace may be longer
            graceSet = true;
            wake.signalAll();
        } finally {
            lock.unlock();
        }
        if (Thread.currentThread() == thread) return; // called from a listener: the loop ends after this step
        boolean interrupted = false;
        while (thread.isAlive()) {
            try {
                thread.join();
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) Thread.currentThread().interrupt();
    }

    @Override
    public void close() {
        shutdown(0);
    }

    // =========================================================================================== the scheduler thread

    /** One request: what was asked, and once in a slot, its state and generation. */
    private final class Job implements Request {
        final int[] prompt;
        final GenerationSettings settings;
        final Listener listener;
        final long submitted = System.nanoTime();
        volatile boolean cancelled;
        volatile boolean done;
        // on the scheduler thread, once admitted
        long admittedAt;
        AyaForward.State state;
        int[] fed = new int[0];   // ids in the state's KV cache, [0, state.position())
        int prefilled;            // prompt tokens in the KV cache
        int cachedTokens;         // of those, from the prompt cache
        Continuation continuation;
        int toFeed = -1;          // the last generated token, fed in the next step
        Session.Token sampled;    // this step's token

        Job(int[] prompt, GenerationSettings settings, Listener listener) {
            this.prompt = prompt;
            this.settings = settings;
            this.listener = listener;
        }

        @Override
        public void cancel() {
            cancelled = true;
            lock.lock();
            try {
                wake.signal();
            } finally {
                lock.unlock();
            }
        }

        @Override
        public boolean done() {
            return done;
        }
    }

    private void loop() {
        try {
            while (true) {
                List<Job> arrived = new ArrayList<>();
                List<Job> cancelledInQueue = new ArrayList<>();
                boolean cancelAll;
                lock.lock();
                try {
                    while (active.isEmpty() && queue.isEmpty() && !stopping) wake.awaitUninterruptibly();
                    if (active.isEmpty() && queue.isEmpty()) return; // stopping, nothing left
                    cancelAll = graceSet && System.nanoTime() - cancelAllAt >= 0;
                    for (Iterator<Job> it = queue.iterator(); it.hasNext(); ) {
                        Job j = it.next();
                        if (j.cancelled || cancelAll) {
                            it.remove();
                            cancelledInQueue.add(j);
                        }
                    }
                    while (active.size() + arrived.size() < options.parallel() && !queue.isEmpty()) {
                        arrived.add(queue.pollFirst());
                    }
                    admitted += arrived.size();
                } finally {
                    lock.unlock();
                }
                for (Job j : cancelledInQueue) {
                    complete(j, new Completion(new int[0], "", StopReason.CANCELLED, j.prompt.length, 0,
                            System.nanoTime() - j.submitted, 0, 0));
                }
                for (Job j : arrived) {
                    try {
                        start(j);
                    } catch (RuntimeException e) { // no memory for its KV state: this request fails, the others go on
                        lock.lock();
                        try {
                            admitted--;
                        } finally {
                            lock.unlock();
                        }
                        j.done = true;
                        notifyError(j, e);
                    }
                }
                for (Job j : List.copyOf(active)) {
                    if (j.cancelled || cancelAll) {
                        j.continuation.cancel();
                        finish(j);
                    }
                }
                if (!active.isEmpty()) step();
            }
        } catch (Throwable t) {
            // a bug or an Error (out of memory): no request may wait forever for an answer
            failAll(new AyaException("the scheduler stopped: " + t, t));
            throw t;
        } finally {
            freeStates();
        }
    }

    /** Gives an admitted request a KV state: the cached one sharing most of its prompt, else a free or new one. */
    private void start(Job j) {
        j.admittedAt = System.nanoTime();
        PromptCache.Entry hit = cache == null ? null : cache.take(j.prompt);
        if (hit != null) {
            j.state = hit.state();
            j.cachedTokens = Session.rewindToCommonPrefix(j.state, hit.ids(), j.prompt);
        } else {
            j.state = free.isEmpty() ? forward.newBatchState(context, prefillChunk) : free.pop();
            j.state.reset();
            j.cachedTokens = 0;
        }
        j.prefilled = j.cachedTokens;
        j.fed = Arrays.copyOf(j.prompt, j.prefilled);
        if (j.cachedTokens > 0) {
            cacheHits++;
            cachedTokensReused += j.cachedTokens;
        }
        j.continuation = new Continuation(model, j.prompt, j.settings, j.state.context());
        active.add(j);
    }

    /** One batched forward pass over every active request, then sampling and callbacks. */
    private void step() {
        List<AyaForward.Sequence> batch = new ArrayList<>();
        List<Job> jobs = new ArrayList<>();
        for (Job j : active) { // decoding rows first: with bf16 activations, one run of decode rows
            if (j.toFeed >= 0) {
                batch.add(new AyaForward.Sequence(j.state, new int[] {j.toFeed}, 0));
                jobs.add(j);
            }
        }
        int budget = prefillChunk;
        for (Job j : active) {
            int remaining = j.prompt.length - j.prefilled;
            if (j.toFeed >= 0 || remaining == 0 || budget == 0) continue;
            int chunk = Math.min(remaining, budget);
            budget -= chunk;
            boolean last = chunk == remaining;
            batch.add(new AyaForward.Sequence(j.state, Arrays.copyOfRange(j.prompt, j.prefilled, j.prefilled + chunk),
                    last ? chunk - 1 : chunk));
            jobs.add(j);
        }
        int rows = 0;
        for (AyaForward.Sequence s : batch) rows += s.tokens().length;
        try {
            forward.forward(scratch, batch, (e, i, logits) -> {
                Job j = jobs.get(e);
                j.sampled = j.continuation.next(logits, j.state.position(), j.state.context());
            });
        } catch (RuntimeException e) {
            for (Job j : jobs) fail(j, e);
            return;
        }
        steps++;
        stepRows += rows;
        lastBatchRows = rows;
        for (int e = 0; e < batch.size(); e++) {
            Job j = jobs.get(e);
            int[] tokens = batch.get(e).tokens();
            remember(j, tokens);
            if (j.toFeed >= 0) {
                j.toFeed = -1;
            } else {
                j.prefilled += tokens.length;
                promptTokens += tokens.length;
                if (j.prefilled < j.prompt.length) continue; // more prompt chunks to come
            }
            Session.Token t = j.sampled;
            j.sampled = null;
            if (t != null) {
                completionTokens++;
                if (!deliver(j, t.id(), t.text())) continue;
            }
            if (j.continuation.finished()) {
                finish(j);
            } else {
                j.toFeed = t.id();
            }
        }
    }

    private void remember(Job j, int[] tokens) {
        int from = j.state.position() - tokens.length;
        if (j.fed.length < j.state.position()) j.fed = Arrays.copyOf(j.fed, Math.max(j.state.position(), 2 * j.fed.length));
        System.arraycopy(tokens, 0, j.fed, from, tokens.length);
    }

    /** Calls onToken; a listener that throws fails its request (false). */
    private boolean deliver(Job j, int id, String text) {
        try {
            j.listener.onToken(id, text);
            return true;
        } catch (RuntimeException e) {
            fail(j, e);
            return false;
        }
    }

    /** A request that ended: the held-back text, onDone, and its state to the prompt cache (or the free list). */
    private void finish(Job j) {
        Continuation c = j.continuation;
        String rest = c.releaseHeldText();
        if (!rest.isEmpty() && !deliver(j, -1, rest)) return;
        long first = c.firstTokenNanos();
        Completion done = new Completion(c.ids(), c.text(), c.reason(), j.prompt.length, j.cachedTokens,
                j.admittedAt - j.submitted, first - j.admittedAt, c.generated() == 0 ? 0 : c.endNanos() - first);
        release(j, true);
        complete(j, done);
    }

    private void fail(Job j, RuntimeException e) {
        release(j, false);
        j.done = true;
        notifyError(j, e);
    }

    private static void notifyError(Job j, RuntimeException e) {
        try {
            j.listener.onError(e);
        } catch (RuntimeException ignored) {
            // the request has ended either way
        }
    }

    private void complete(Job j, Completion c) {
        j.done = true;
        try {
            j.listener.onDone(c);
        } catch (RuntimeException ignored) {
            // the request has ended either way
        }
    }

    /** Takes a request out of its slot; its state goes to the prompt cache when it holds a usable prefix. */
    private void release(Job j, boolean cacheable) {
        if (!active.remove(j)) return;
        lock.lock();
        try {
            admitted--;
        } finally {
            lock.unlock();
        }
        AyaForward.State s = j.state;
        j.state = null;
        List<AyaForward.State> unused = cache != null && cacheable && s.position() > 0
                ? cache.put(Arrays.copyOf(j.fed, s.position()), s) : List.of(s);
        for (AyaForward.State u : unused) {
            if (active.size() + free.size() < options.parallel()) {
                u.reset();
                free.push(u);
            } else {
                u.close();
            }
        }
    }

    private void failAll(RuntimeException e) {
        for (Job j : List.copyOf(active)) fail(j, e);
        List<Job> waiting;
        lock.lock();
        try {
            stopping = true;
            waiting = List.copyOf(queue);
            queue.clear();
        } finally {
            lock.unlock();
        }
        for (Job j : waiting) {
            j.done = true;
            notifyError(j, e);
        }
    }

    private void freeStates() {
        for (AyaForward.State s : free) s.close();
        free.clear();
        if (cache != null) cache.clear().forEach(AyaForward.State::close);
        for (Job j : active) if (j.state != null) j.state.close();
        scratch.close();
    }

    private static String mib(long bytes) {
        return String.format(Locale.ROOT, "%.1f MiB", bytes / (1024.0 * 1024.0));
    }
}
