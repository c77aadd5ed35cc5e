package aya.bench;

/** Mean and sample standard deviation of repeated measurements (llama-bench reports the same pair). */
public record Stats(double mean, double sd, int n) {

    public static Stats of(double... values) {
        int n = values.length;
        if (n == 0) return new Stats(Double.NaN, Double.NaN, 0);
        double sum = 0;
        for (double v : values) sum += v;
        double mean = sum / n;
        if (n == 1) return new Stats(mean, 0, 1);
        double sq = 0;
        for (double v : values) sq += (v - mean) * (v - mean);
        return new Stats(mean, Math.sqrt(sq / (n - 1)), n); // n - 1: sample sd, as llama-bench
    }
}
