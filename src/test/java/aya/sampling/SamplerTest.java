package aya.sampling;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Random;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.*;

class SamplerTest {

    private static final double EPS = 1e-6;

    /** temperature 1 and every filter off unless a test sets it. */
    private static SamplerSettings plain(float temperature, int topK, float topP, float minP) {
        return new SamplerSettings(temperature, topK, topP, minP, 1f, 64, 1234);
    }

    /** Logits whose softmax at temperature 1 is exactly {@code probs}. */
    private static float[] logitsOf(double... probs) {
        float[] l = new float[probs.length];
        for (int i = 0; i < probs.length; i++) l[i] = (float) Math.log(probs[i]);
        return l;
    }

    private static void assertDistribution(Sampler.Distribution d, int[] ids, double[] probs) {
        int[] order = IntStream.range(0, d.ids().length).boxed()
                .sorted(Comparator.comparingInt(i -> d.ids()[i])).mapToInt(i -> i).toArray();
        int[] gotIds = Arrays.stream(order).map(i -> d.ids()[i]).toArray();
        assertArrayEquals(ids, gotIds, "surviving tokens");
        for (int i = 0; i < ids.length; i++) {
            assertEquals(probs[i], d.probabilities()[order[i]], EPS, "probability of token " + ids[i]);
        }
    }

    @Test
    void topKKeepsTheKLargestAndRenormalizes() {
        Sampler s = new Sampler(plain(1, 2, 1, 0), 4, 100);
        // softmax of {3, 2}: e^3/(e^3+e^2) = 1/(1+e^-1)
        assertDistribution(s.distribution(new float[] {1, 3, 2, 0}),
                new int[] {1, 2}, new double[] {0.7310585786300049, 0.2689414213699951});
    }

    @Test
    void topPKeepsTheSmallestPrefixReachingP() {
        float[] logits = logitsOf(0.5, 0.3, 0.15, 0.05);
        assertDistribution(new Sampler(plain(1, 0, 0.75f, 0), 4, 100).distribution(logits),
                new int[] {0, 1}, new double[] {0.5 / 0.8, 0.3 / 0.8});
        assertDistribution(new Sampler(plain(1, 0, 0.85f, 0), 4, 100).distribution(logits),
                new int[] {0, 1, 2}, new double[] {0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95});
        assertDistribution(new Sampler(plain(1, 0, 0.4f, 0), 4, 100).distribution(logits),
                new int[] {0}, new double[] {1});
        // p = 0 still keeps one token (llama.cpp: the first one always reaches the sum)
        assertDistribution(new Sampler(plain(1, 0, 0f, 0), 4, 100).distribution(logits),
                new int[] {0}, new double[] {1});
        // p = 1 is off: everything survives untouched
        assertDistribution(new Sampler(plain(1, 0, 1f, 0), 4, 100).distribution(logits),
                new int[] {0, 1, 2, 3}, new double[] {0.5, 0.3, 0.15, 0.05});
    }

    @Test
    void minPIsRelativeToTheMostLikelyToken() {
        float[] logits = logitsOf(0.5, 0.3, 0.15, 0.05);
        // 0.25 * 0.5 = 0.125: 0.15 survives, 0.05 does not
        assertDistribution(new Sampler(plain(1, 0, 1, 0.25f), 4, 100).distribution(logits),
                new int[] {0, 1, 2}, new double[] {0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95});
        // 0.35 * 0.5 = 0.175
        assertDistribution(new Sampler(plain(1, 0, 1, 0.35f), 4, 100).distribution(logits),
                new int[] {0, 1}, new double[] {0.5 / 0.8, 0.3 / 0.8});
    }

    @Test
    void topPSeesTheTopKSurvivorsRenormalized() {
        // after top-k 3 the probabilities are 4/9, 3/9, 2/9: 4/9 + 3/9 = 0.78 >= 0.75 keeps two
        // (over the full distribution it would need three: 0.4 + 0.3 = 0.7 < 0.75)
        float[] logits = logitsOf(0.4, 0.3, 0.2, 0.1);
        assertDistribution(new Sampler(plain(1, 3, 0.75f, 0), 4, 100).distribution(logits),
                new int[] {0, 1}, new double[] {4.0 / 7, 3.0 / 7});
    }

    @Test
    void temperatureComesAfterTheFilters() {
        // top-p 0.75 on the temperature-1 probabilities keeps {0, 1}; then T = 2 flattens them to sqrt(p)
        // (temperature first would flatten to 0.379, 0.294, 0.208, 0.120 and keep three tokens)
        float[] logits = logitsOf(0.5, 0.3, 0.15, 0.05);
        double a = Math.sqrt(0.5), b = Math.sqrt(0.3);
        assertDistribution(new Sampler(plain(2, 0, 0.75f, 0), 4, 100).distribution(logits),
                new int[] {0, 1}, new double[] {a / (a + b), b / (a + b)});
        // T = 0.5 sharpens: p^2
        assertDistribution(new Sampler(plain(0.5f, 0, 1, 0), 4, 100).distribution(logits),
                new int[] {0, 1, 2, 3}, new double[] {0.25 / 0.365, 0.09 / 0.365, 0.0225 / 0.365, 0.0025 / 0.365});
    }

    @Test
    void greedyIsTheArgmaxWithTheLowestIdOnTies() {
        Sampler s = new Sampler(plain(0, 40, 0.95f, 0.05f), 4, 100);
        assertEquals(1, s.sample(new float[] {1, 5, 5, 2}));
        assertEquals(3, s.sample(new float[] {-7, -5, -6, -1}));
        assertEquals(0, s.sample(new float[] {0, -0f, 0, 0}));
        assertEquals(2, s.sample(new float[] {Float.NaN, 1, 2, Float.NaN}));
    }

    @Test
    void rowsBeyondTheTokenizerAreNeverChosen() {
        float[] logits = {1, 2, 3, 0.5f, 100, 200}; // model vocab 6, tokenizer 4
        assertEquals(2, new Sampler(plain(0, 0, 1, 0), 4, 100).sample(logits));
        Sampler s = new Sampler(plain(1.5f, 0, 1, 0), 4, 100);
        for (int i = 0; i < 2000; i++) assertTrue(s.sample(logits) < 4);
        for (int id : new Sampler(plain(1, 2, 0.9f, 0), 4, 100).distribution(logits).ids()) assertTrue(id < 4);
    }

    @Test
    void repeatPenaltyDividesPositiveAndMultipliesNegativeLogitsOncePerDistinctToken() {
        SamplerSettings settings = new SamplerSettings(1, 0, 1, 0, 2f, 64, 7);
        Sampler s = new Sampler(settings, 4, 100);
        s.accept(0);
        s.accept(1);
        s.accept(0); // seen twice: still divided once
        // {2, -1, 0.5, 3} -> {2/2, -1*2, 0.5, 3}
        assertDistribution(s.distribution(new float[] {2, -1, 0.5f, 3}),
                new int[] {0, 1, 2, 3}, softmax(1, -2, 0.5, 3));

        // only the last 2 tokens count
        Sampler window = new Sampler(new SamplerSettings(1, 0, 1, 0, 2f, 2, 7), 4, 100);
        window.accept(0);
        window.accept(1);
        window.accept(2);
        assertDistribution(window.distribution(new float[] {2, -1, 0.5f, 3}),
                new int[] {0, 1, 2, 3}, softmax(2, -2, 0.25, 3));

        // -1 = the whole context
        Sampler whole = new Sampler(new SamplerSettings(1, 0, 1, 0, 2f, -1, 7), 4, 3);
        whole.accept(0);
        whole.accept(1);
        whole.accept(2);
        assertDistribution(whole.distribution(new float[] {2, -1, 0.5f, 3}),
                new int[] {0, 1, 2, 3}, softmax(1, -2, 0.25, 3));

        // the sampled token itself enters the window: greedy picks 3 (logit 3), then 3 is penalized to 1.5 < 2
        Sampler greedy = new Sampler(new SamplerSettings(0, 0, 1, 0, 2f, 64, 7), 4, 100);
        assertEquals(3, greedy.sample(new float[] {2, -1, 0.5f, 3}));
        assertEquals(0, greedy.sample(new float[] {2, -1, 0.5f, 3}));
        greedy.reset();
        assertEquals(3, greedy.sample(new float[] {2, -1, 0.5f, 3}));
    }

    private static double[] softmax(double... logits) {
        double sum = 0;
        for (double l : logits) sum += Math.exp(l);
        double[] p = new double[logits.length];
        for (int i = 0; i < logits.length; i++) p[i] = Math.exp(logits[i]) / sum;
        return p;
    }

    @Test
    void theSameSeedGivesTheSameChoices() {
        Random gen = new Random(99);
        float[][] steps = new float[200][1000];
        for (float[] row : steps) for (int i = 0; i < row.length; i++) row[i] = (float) gen.nextGaussian() * 2;
        SamplerSettings a = new SamplerSettings(0.9f, 50, 0.95f, 0.02f, 1.1f, 64, 42);
        int[] first = run(new Sampler(a, 1000, 100), steps);
        int[] second = run(new Sampler(a, 1000, 100), steps);
        assertArrayEquals(first, second);
        int[] other = run(new Sampler(new SamplerSettings(0.9f, 50, 0.95f, 0.02f, 1.1f, 64, 43), 1000, 100), steps);
        assertFalse(Arrays.equals(first, other), "another seed should give another sequence");
    }

    private static int[] run(Sampler s, float[][] steps) {
        int[] out = new int[steps.length];
        for (int i = 0; i < steps.length; i++) out[i] = s.sample(steps[i]);
        return out;
    }

    @Test
    void sampledFrequenciesMatchTheDistribution() {
        // fixed seed: deterministic, so this cannot flake; the bound is the chi-square 99.9% point for its dof
        float[] logits = logitsOf(0.4, 0.25, 0.15, 0.1, 0.06, 0.04);
        for (SamplerSettings settings : new SamplerSettings[] {
                new SamplerSettings(1, 0, 1, 0, 1, 0, 5),
                new SamplerSettings(0.7f, 5, 0.9f, 0.2f, 1, 0, 6)}) {
            Sampler s = new Sampler(settings, logits.length, 100);
            Sampler.Distribution d = s.distribution(logits);
            int n = 200_000;
            int[] hits = new int[logits.length];
            for (int i = 0; i < n; i++) hits[s.sample(logits)]++;
            double chi2 = 0;
            for (int id = 0; id < logits.length; id++) {
                double expected = d.probabilityOf(id) * n;
                if (expected == 0) assertEquals(0, hits[id], "token " + id + " was filtered out");
                else chi2 += (hits[id] - expected) * (hits[id] - expected) / expected;
            }
            double[] chi2Limit = {0, 10.83, 13.82, 16.27, 18.47, 20.52};
            assertTrue(chi2 < chi2Limit[d.ids().length - 1], "chi2 " + chi2 + " for " + settings);
        }
    }

    @Test
    void largeVocabularyMatchesAPlainFullSortReference() {
        int vocab = 261_008;
        float[] logits = new float[262_144];
        Random gen = new Random(3);
        for (int i = 0; i < logits.length; i++) logits[i] = (float) gen.nextGaussian() * 3;
        for (int i = 0; i < 50; i++) logits[gen.nextInt(vocab)] = 12; // ties among the best
        // top-k 40; top-p alone on a flat distribution (nucleus far beyond 256); top-p alone on a peaked one
        for (SamplerSettings settings : new SamplerSettings[] {
                new SamplerSettings(0.8f, 40, 1, 0, 1, 0, 1),
                new SamplerSettings(0.8f, 0, 0.5f, 0, 1, 0, 1),
                new SamplerSettings(0.8f, 40, 0.95f, 0.05f, 1, 0, 1)}) {
            assertDistributionsEqual(reference(logits, vocab, settings),
                    new Sampler(settings, vocab, 100).distribution(logits));
        }
        float[] peaked = logits.clone();
        for (int i = 0; i < 30; i++) peaked[i * 1000] = 25;
        SamplerSettings topP = new SamplerSettings(1, 0, 0.9f, 0, 1, 0, 1);
        assertDistributionsEqual(reference(peaked, vocab, topP), new Sampler(topP, vocab, 100).distribution(peaked));
    }

    private static void assertDistributionsEqual(Sampler.Distribution expected, Sampler.Distribution actual) {
        double[] e = dense(expected), a = dense(actual);
        for (int i = 0; i < e.length; i++) assertEquals(e[i], a[i], EPS, "token " + i);
        assertEquals(expected.ids().length, actual.ids().length);
    }

    private static double[] dense(Sampler.Distribution d) {
        double[] p = new double[262_144];
        for (int i = 0; i < d.ids().length; i++) p[d.ids()[i]] = d.probabilities()[i];
        return p;
    }

    /** The chain written the obvious way: sort everything, cut, renormalize. */
    private static Sampler.Distribution reference(float[] logits, int vocab, SamplerSettings s) {
        Integer[] ids = IntStream.range(0, vocab).boxed().toArray(Integer[]::new);
        Arrays.sort(ids, (x, y) -> logits[x] != logits[y] ? Float.compare(logits[y], logits[x]) : Integer.compare(x, y));
        int n = vocab;
        if (s.topK() > 0) n = Math.min(n, s.topK());
        if (s.topP() < 1) {
            double sum = 0;
            for (int i = 0; i < n; i++) sum += Math.exp(logits[ids[i]] - logits[ids[0]]);
            double cumulative = 0;
            for (int i = 0; i < n; i++) {
                cumulative += Math.exp(logits[ids[i]] - logits[ids[0]]) / sum;
                if (cumulative >= s.topP()) { n = i + 1; break; }
            }
        }
        if (s.minP() > 0) {
            int kept = 0;
            while (kept < n && logits[ids[kept]] >= logits[ids[0]] + (float) Math.log(s.minP())) kept++;
            n = kept;
        }
        double sum = 0;
        for (int i = 0; i < n; i++) sum += Math.exp((logits[ids[i]] - logits[ids[0]]) / s.temperature());
        int[] out = new int[n];
        double[] p = new double[n];
        for (int i = 0; i < n; i++) {
            out[i] = ids[i];
            p[i] = Math.exp((logits[ids[i]] - logits[ids[0]]) / s.temperature()) / sum;
        }
        return new Sampler.Distribution(out, p);
    }

    @Test
    void nativeLogitsGiveTheSameChoicesAsAnArray() {
        float[] logits = logitsOf(0.4, 0.25, 0.15, 0.1, 0.06, 0.04);
        SamplerSettings settings = new SamplerSettings(1, 0, 1, 0, 1, 0, 11);
        Sampler fromArray = new Sampler(settings, 6, 100);
        Sampler fromSegment = new Sampler(settings, 6, 100);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment segment = arena.allocate(ValueLayout.JAVA_FLOAT, logits.length);
            MemorySegment.copy(logits, 0, segment, ValueLayout.JAVA_FLOAT, 0, logits.length);
            for (int i = 0; i < 100; i++) assertEquals(fromArray.sample(logits), fromSegment.sample(segment));
        }
    }

    @Test
    void badInputsAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> new Sampler(plain(1, 0, 1, 0), 4, 10).sample(new float[3]));
        assertThrows(IllegalStateException.class, () -> new Sampler(plain(1, 0, 1, 0), 2, 10)
                .sample(new float[] {Float.NaN, Float.NEGATIVE_INFINITY}));
    }
}
