package aya.bench;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/** The measurements of one backend and weight format in one {@code aya bench} run. */
public record BenchResult(
        String model,
        String backend,
        String kernels,
        String quant,
        String activations,
        int threads,
        int promptTokens,
        int genTokens,
        int depth,
        int reps,
        Stats prefillTokensPerS,
        Stats decodeTokensPerS,
        double readGbPerS,          // best read bandwidth measured right before and after this backend's timed part
        long decodeBytesPerToken,   // bytes one decode step reads (weights + head + KV cache at this depth)
        double loadS,
        long weightBytes,
        long peakRssBytes) {

    /** Decode speed limit set by memory bandwidth: bandwidth / bytes read per token. */
    public double decodeBoundTokensPerS() {
        return decodeBytesPerToken <= 0 ? Double.NaN : readGbPerS * 1e9 / decodeBytesPerToken;
    }

    /** Measured decode as a percentage of {@link #decodeBoundTokensPerS()}. */
    public double decodePercentOfBound() {
        return 100 * decodeTokensPerS.mean() / decodeBoundTokensPerS();
    }

    /** Keys and values of the {@code --json} line, in a fixed order. */
    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("model", model);
        m.put("backend", backend);
        m.put("kernels", kernels);
        m.put("quant", quant);
        m.put("activations", activations);
        m.put("threads", threads);
        m.put("prompt_tokens", promptTokens);
        m.put("gen_tokens", genTokens);
        m.put("depth", depth);
        m.put("reps", reps);
        m.put("prefill_tokens_per_s", round(prefillTokensPerS.mean()));
        m.put("prefill_tokens_per_s_sd", round(prefillTokensPerS.sd()));
        m.put("decode_tokens_per_s", round(decodeTokensPerS.mean()));
        m.put("decode_tokens_per_s_sd", round(decodeTokensPerS.sd()));
        m.put("read_gb_per_s", round(readGbPerS));
        m.put("decode_bytes_per_token", decodeBytesPerToken);
        m.put("decode_bound_tokens_per_s", round(decodeBoundTokensPerS()));
        m.put("decode_percent_of_bound", round(decodePercentOfBound()));
        m.put("load_s", round(loadS));
        m.put("weight_bytes", weightBytes);
        m.put("peak_rss_bytes", peakRssBytes);
        return m;
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    /** One line of JSON (NaN, e.g. for a skipped phase, becomes null). */
    public String toJson() {
        Map<String, Object> m = toMap();
        m.replaceAll((k, v) -> v instanceof Double d && !Double.isFinite(d) ? null : v);
        try {
            return JSON.writeValueAsString(m);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Test name in llama-bench's style: pp512, tg32, with " @ d2048" at depth. */
    static String testName(String kind, int tokens, int depth) {
        return kind + tokens + (depth > 0 ? " @ d" + depth : "");
    }

    private static double round(double v) {
        return Double.isFinite(v) ? Math.round(v * 1000) / 1000.0 : v;
    }

    static String formatStats(Stats s) {
        return String.format(Locale.ROOT, "%.2f ± %.2f", s.mean(), s.sd());
    }
}
