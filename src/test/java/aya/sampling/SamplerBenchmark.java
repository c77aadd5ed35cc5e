package aya.sampling;

import java.util.Locale;
import java.util.Random;

/**
 * Time per sample() over Tiny Aya's vocabulary (not a test; run by hand):
 * <pre>
 *   ./aya test -q -DskipTests   # or any build that compiles test classes
 *   java -cp target/classes:target/test-classes aya.sampling.SamplerBenchmark
 * </pre>
 */
public final class SamplerBenchmark {
    public static void main(String[] args) {
        int modelVocab = 262_144, tokenizerVocab = 261_008, rows = 64;
        Random random = new Random(1);
        float[][] logits = new float[rows][modelVocab];
        for (float[] row : logits) for (int i = 0; i < modelVocab; i++) row[i] = (float) random.nextGaussian() * 3;
        SamplerSettings[] settings = {
                new SamplerSettings(0, 40, 0.95f, 0.05f, 1, 64, 1),        // greedy
                SamplerSettings.llamaCppDefaults(1),                       // temp 0.8, top-k 40, top-p 0.95, min-p 0.05
                new SamplerSettings(0.8f, 40, 0.95f, 0.05f, 1.1f, 64, 1),  // + repeat penalty
                new SamplerSettings(0.8f, 0, 0.95f, 0.05f, 1, 64, 1),      // no top-k: top-p over everything
                new SamplerSettings(1, 0, 1, 0, 1, 64, 1),                 // no filter at all
        };
        for (SamplerSettings s : settings) {
            Sampler sampler = new Sampler(s, tokenizerVocab, 8192);
            for (int i = 0; i < 200; i++) sampler.sample(logits[i % rows]); // warm-up
            int n = 1000;
            long start = System.nanoTime();
            for (int i = 0; i < n; i++) sampler.sample(logits[i % rows]);
            double micros = (System.nanoTime() - start) / 1e3 / n;
            System.out.printf(Locale.ROOT, "%8.1f us/token  %s%n", micros, s);
        }
    }
}
