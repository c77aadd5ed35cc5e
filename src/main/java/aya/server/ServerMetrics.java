package aya.server;

import aya.generation.Scheduler;

import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;

/** Counters behind {@code GET /metrics}, written in Prometheus' text format (names prefixed {@code aya_}). */
final class ServerMetrics {

    private final Map<String, LongAdder> requests = new ConcurrentHashMap<>(); // "endpoint status" -> count
    private final LongAdder promptProcessed = new LongAdder();   // prompt tokens not taken from the cache
    private final LongAdder promptNanos = new LongAdder();
    private final LongAdder predicted = new LongAdder();
    private final LongAdder predictedNanos = new LongAdder();

    void request(String endpoint, int status) {
        requests.computeIfAbsent(endpoint + " " + status, k -> new LongAdder()).increment();
    }

    void completion(Scheduler.Completion c) {
        promptProcessed.add(c.promptTokens() - c.cachedPromptTokens());
        promptNanos.add(c.promptNanos());
        predicted.add(c.ids().length);
        predictedNanos.add(c.generationNanos());
    }

    /** The exposition text; {@code stats} is null while the model loads. */
    String render(Scheduler.Stats stats) {
        StringBuilder out = new StringBuilder();
        header(out, "aya_requests_total", "counter", "HTTP requests answered, by endpoint and status.");
        requests.entrySet().stream().sorted(Map.Entry.comparingByKey()).forEach(e -> {
            String[] key = e.getKey().split(" ");
            out.append("aya_requests_total{endpoint=\"").append(key[0]).append("\",status=\"").append(key[1])
                    .append("\"} ").append(e.getValue().sum()).append('\n');
        });
        if (stats == null) return out.toString();
        metric(out, "aya_prompt_tokens_total", "counter", "Prompt tokens submitted (cached ones included).", stats.promptTokens());
        metric(out, "aya_completion_tokens_total", "counter", "Tokens generated.", stats.completionTokens());
        metric(out, "aya_prompt_cache_hits_total", "counter", "Requests that reused a cached prompt prefix.", stats.cacheHits());
        metric(out, "aya_prompt_cache_tokens_total", "counter", "Prompt tokens taken from the cache.", stats.cachedTokensReused());
        metric(out, "aya_sequences_active", "gauge", "Sequences being processed.", stats.active());
        metric(out, "aya_sequences_queued", "gauge", "Requests waiting for a slot.", stats.queued());
        metric(out, "aya_steps_total", "counter", "Forward passes run by the scheduler.", stats.steps());
        metric(out, "aya_step_rows_total", "counter", "Tokens processed by those forward passes.", stats.stepRowsTotal());
        metric(out, "aya_batch_rows_mean", "gauge", "Mean tokens per forward pass (batch size per step).",
                stats.steps() == 0 ? 0 : (double) stats.stepRowsTotal() / stats.steps());
        metric(out, "aya_batch_rows_last", "gauge", "Tokens in the last forward pass.", stats.lastBatchRows());
        metric(out, "aya_prompt_tokens_per_second", "gauge", "Prompt processing speed of finished requests (mean per request).",
                rate(promptProcessed.sum(), promptNanos.sum()));
        metric(out, "aya_predicted_tokens_per_second", "gauge", "Generation speed of finished requests (mean per stream).",
                rate(predicted.sum(), predictedNanos.sum()));
        return out.toString();
    }

    private static double rate(long tokens, long nanos) {
        return nanos <= 0 ? 0 : tokens * 1e9 / nanos;
    }

    private static void header(StringBuilder out, String name, String type, String help) {
        out.append("# HELP ").append(name).append(' ').append(help).append('\n');
        out.append("# TYPE ").append(name).append(' ').append(type).append('\n');
    }

    private static void metric(StringBuilder out, String name, String type, String help, double value) {
        header(out, name, type, help);
        out.append(name).append(' ');
        if (value == Math.rint(value) && Math.abs(value) < 1e15) out.append((long) value);
        else out.append(String.format(Locale.ROOT, "%.4f", value));
        out.append('\n');
    }
}
