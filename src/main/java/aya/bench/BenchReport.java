package aya.bench;

import java.util.List;
import java.util.Locale;

/** The human-readable report of a bench run: a llama-bench-style table and the derived numbers. */
public final class BenchReport {

    private BenchReport() {
    }

    public static String text(List<BenchResult> results) {
        StringBuilder sb = new StringBuilder();
        sb.append("| backend | quant | act  | threads | test             |              t/s |\n");
        sb.append("| ------- | ----- | ---- | ------: | ---------------- | ---------------: |\n");
        for (BenchResult r : results) {
            if (r.promptTokens() > 0) row(sb, r, BenchResult.testName("pp", r.promptTokens(), r.depth()), r.prefillTokensPerS());
            if (r.genTokens() > 0) row(sb, r, BenchResult.testName("tg", r.genTokens(), r.depth()), r.decodeTokensPerS());
        }
        sb.append('\n');
        for (BenchResult r : results) {
            sb.append(String.format(Locale.ROOT, "%s (%s): load %.2f s, weights %.2f GB, peak RSS %.2f GB%n",
                    r.backend(), r.kernels(), r.loadS(), r.weightBytes() / 1e9, r.peakRssBytes() / 1e9));
            if (r.genTokens() > 0) {
                sb.append(String.format(Locale.ROOT,
                        "  decode reads %.2f GB/token; at %.1f GB/s that bounds decode at %.2f t/s: measured %.1f%% of it%n",
                        r.decodeBytesPerToken() / 1e9, r.readGbPerS(), r.decodeBoundTokensPerS(), r.decodePercentOfBound()));
            }
        }
        if (results.size() == 2) {
            BenchResult a = results.get(0), b = results.get(1);
            sb.append(String.format(Locale.ROOT, "%s / %s: prefill %.2fx, decode %.2fx%n", b.backend(), a.backend(),
                    b.prefillTokensPerS().mean() / a.prefillTokensPerS().mean(),
                    b.decodeTokensPerS().mean() / a.decodeTokensPerS().mean()));
        }
        return sb.toString();
    }

    private static void row(StringBuilder sb, BenchResult r, String test, Stats s) {
        sb.append(String.format(Locale.ROOT, "| %-7s | %-5s | %-4s | %7d | %-16s | %16s |%n",
                r.backend(), r.quant(), r.activations(), r.threads(), test, BenchResult.formatStats(s)));
    }
}
