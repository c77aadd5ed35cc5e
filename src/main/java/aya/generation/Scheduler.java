package aya.generation;

import aya.AyaException;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.LinkedBlockingDeque;
import java.util.concurrent.TimeUnit;

/**
 * Runs generation requests for a server: callers submit prompts, a scheduler thread owns the model and reports each
 * token to the request's listener.
 *
 * <p>STAND-IN (branch serve-http): this implementation runs one request at a time with one {@link Session} on one
 * thread (the session's KV cache gives prompt-prefix reuse across requests). The batched scheduler of branch
 * serve-engine replaces this file at merge with the same API; nothing outside this file may rely on how it works.
 */
public final class Scheduler implements AutoCloseable {

    /**
     * @param parallel      sequences decoded together (the stand-in runs 1)
     * @param context       positions of each sequence (prompt + reply)
     * @param queueCapacity requests waiting beyond the running ones; more are refused with {@link QueueFullException}
     * @param cacheRamBytes memory for cached prompt prefixes (unused by the stand-in beyond its one session)
     * @param prefillChunk  prompt tokens processed per step (unused by the stand-in)
     */
    public record Options(int parallel, int context, int queueCapacity, long cacheRamBytes, int prefillChunk) {
        public Options {
            if (parallel < 1) throw new AyaException("parallel must be at least 1, got " + parallel);
            if (context < 1) throw new AyaException("context must be at least 1, got " + context);
            if (queueCapacity < 0) throw new AyaException("queue capacity must be >= 0, got " + queueCapacity);
            if (cacheRamBytes < 0) throw new AyaException("cache RAM must be >= 0, got " + cacheRamBytes);
            if (prefillChunk < 1) throw new AyaException("prefill chunk must be at least 1, got " + prefillChunk);
        }
    }

    /** Receives a request's progress on the scheduler thread: must return quickly (queue the work elsewhere). */
    public interface Listener {
        void onToken(int id, String text);

        void onDone(Completion c);

        void onError(RuntimeException e);
    }

    /** What a request produced and how long each phase took. */
    public record Completion(int[] ids, String text, StopReason reason, int promptTokens, int cachedPromptTokens,
                             long queuedNanos, long promptNanos, long generationNanos) {
    }

    /** A submitted request. */
    public interface Request {
        /** Stops it (queued: never runs; running: ends after the current token with {@link StopReason#CANCELLED}). */
        void cancel();

        boolean done();
    }

    /** Counters since the start; {@code steps} are forward passes, {@code stepRowsTotal} the tokens they processed. */
    public record Stats(int active, int queued, long steps, long stepRowsTotal, long promptTokens, long completionTokens,
                        long cacheHits, long cachedTokensReused, double lastBatchRows) {
    }

    private final AyaModel model;
    private final Options options;
    private final Session session;
    private final LinkedBlockingDeque<Job> queue = new LinkedBlockingDeque<>();
    private final Thread thread;
    private volatile boolean accepting = true;
    private volatile boolean cancelAll;
    private volatile Job running;
    private long steps, stepRows, promptTokens, completionTokens, cacheHits, cachedReused; // guarded by this
    private double lastBatchRows;

    public Scheduler(AyaModel model, Options options) {
        this.model = model;
        this.options = options;
        this.session = model.newSession(options.context());
        this.thread = Thread.ofPlatform().name("aya-scheduler").daemon().start(this::loop);
    }

    /**
     * Queues a request.
     *
     * @throws QueueFullException when {@code queueCapacity} requests already wait, or the scheduler is shutting down
     * @throws AyaException       when the prompt is empty or longer than the context
     */
    public Request submit(int[] prompt, GenerationSettings settings, Listener listener) {
        if (prompt.length == 0) throw new AyaException("the prompt is empty: nothing to continue");
        if (prompt.length > options.context()) {
            throw new AyaException("the prompt has " + prompt.length + " tokens, more than the context of "
                    + options.context() + " tokens");
        }
        if (!accepting) throw new QueueFullException("the server is shutting down");
        Job job = new Job(prompt.clone(), settings, listener);
        synchronized (queue) {
            if (queue.size() >= options.queueCapacity()) {
                throw new QueueFullException("the queue is full (" + options.queueCapacity() + " requests waiting)");
            }
            queue.add(job);
        }
        return job;
    }

    public synchronized Stats stats() {
        return new Stats(running != null ? 1 : 0, queue.size(), steps, stepRows, promptTokens, completionTokens,
                cacheHits, cachedReused, lastBatchRows);
    }

    /** Stops accepting, lets queued and running requests finish for {@code graceMillis}, cancels the rest, joins. */
    public void shutdown(long graceMillis) {
        accepting = false;
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(graceMillis);
        while ((running != null || !queue.isEmpty()) && System.nanoTime() < deadline) {
            sleep(5);
        }
        cancelAll = true; // the loop sees it between tokens (no interrupt: it could land inside a kernel call)
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() {
        if (thread.isAlive()) shutdown(0);
        session.close();
    }

    private void loop() {
        while (!cancelAll) {
            Job job;
            try {
                job = queue.poll(50, TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                break;
            }
            if (job == null) continue;
            running = job;
            try {
                run(job);
            } catch (RuntimeException e) {
                job.finished = true;
                job.listener.onError(e);
            } finally {
                running = null;
            }
        }
        List<Job> left = new ArrayList<>();
        queue.drainTo(left);
        for (Job job : left) {
            job.finished = true;
            job.listener.onDone(new Completion(new int[0], "", StopReason.CANCELLED, job.prompt.length, 0,
                    System.nanoTime() - job.submitted, 0, 0));
        }
    }

    private void run(Job job) {
        long started = System.nanoTime();
        if (job.cancelled || cancelAll) {
            job.finished = true;
            job.listener.onDone(new Completion(new int[0], "", StopReason.CANCELLED, job.prompt.length, 0, started - job.submitted, 0, 0));
            return;
        }
        int reusable = commonPrefix(session.cachedIds(), job.prompt);
        Session.Generation g = session.start(job.prompt, job.settings); // the prefill
        long prefilled = System.nanoTime();
        synchronized (this) {
            steps++;
            stepRows += job.prompt.length - reusable;
            lastBatchRows = job.prompt.length - reusable;
            promptTokens += job.prompt.length;
            if (reusable > 0) cacheHits++;
            cachedReused += reusable;
        }
        int[] ids = new int[16];
        int n = 0;
        StringBuilder text = new StringBuilder();
        StopReason reason = null;
        while (g.hasNext()) {
            if (job.cancelled || cancelAll) {
                reason = StopReason.CANCELLED;
                break;
            }
            Session.Token t = g.next();
            if (t.id() >= 0) {
                if (n == ids.length) ids = Arrays.copyOf(ids, 2 * n);
                ids[n++] = t.id();
                synchronized (this) {
                    completionTokens++;
                    if (n > 1) { // each token after the first is one decode step of one row
                        steps++;
                        stepRows++;
                        lastBatchRows = 1;
                    }
                }
            }
            text.append(t.text());
            job.listener.onToken(t.id(), t.text());
        }
        long end = System.nanoTime();
        int cached = reusable;
        if (reason == null) {
            GenerationResult r = g.result();
            reason = r.stopReason();
            cached = r.reusedTokens();
        }
        job.finished = true;
        job.listener.onDone(new Completion(Arrays.copyOf(ids, n), text.toString(), reason, job.prompt.length, cached,
                started - job.submitted, prefilled - started, end - prefilled));
    }

    /** Prompt tokens the session's cache already holds (at least one is always processed again). */
    private static int commonPrefix(int[] cached, int[] prompt) {
        int limit = Math.min(cached.length, prompt.length - 1), i = 0;
        while (i < limit && cached[i] == prompt[i]) i++;
        return i;
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private final class Job implements Request {
        final int[] prompt;
        final GenerationSettings settings;
        final Listener listener;
        final long submitted = System.nanoTime();
        volatile boolean cancelled;
        volatile boolean finished;

        Job(int[] prompt, GenerationSettings settings, Listener listener) {
            this.prompt = prompt;
            this.settings = settings;
            this.listener = listener;
        }

        @Override
        public void cancel() {
            cancelled = true;
            if (queue.remove(this)) { // never started: report it now
                finished = true;
                listener.onDone(new Completion(new int[0], "", StopReason.CANCELLED, prompt.length, 0,
                        System.nanoTime() - submitted, 0, 0));
            }
        }

        @Override
        public boolean done() {
            return finished;
        }
    }
}
