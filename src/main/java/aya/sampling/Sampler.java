package aya.sampling;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks the next token from a row of logits, with llama.cpp's sampler chain and semantics:
 * <pre>
 *   penalties -> top-k -> top-p -> min-p -> temperature -> dist
 * </pre>
 * <ul>
 *   <li>penalties: each DISTINCT token among the last repeatLastN accepted tokens gets its logit divided by
 *       repeatPenalty if positive, multiplied if &lt;= 0 (CTRL, as llama.cpp).</li>
 *   <li>top-k: keep the k largest logits (ties: lower id first).</li>
 *   <li>top-p: softmax over the survivors at temperature 1, keep the smallest most-likely prefix whose cumulative
 *       probability is &gt;= p (at least one token).</li>
 *   <li>min-p: keep tokens whose logit is &gt;= max logit + ln(p), i.e. probability &gt;= p * max probability
 *       (again at temperature 1, over the survivors).</li>
 *   <li>temperature: divide the survivors' logits by T, softmax, draw one with the seeded generator.</li>
 * </ul>
 * Temperature 0 is greedy: the argmax of the penalized logits (ties: lowest id), the generator is not used
 * (the filters never remove the argmax, so the chain would give the same token).
 * Only ids below {@code tokenizerVocab} are ever chosen: the model's logit rows beyond the tokenizer's ids are ignored.
 * <p>
 * Per token this allocates nothing: with top-k set, the k best are selected in place (O(n log k)), and top-p without
 * top-k first tries the best 256 before it sorts everything. Not thread-safe: one sampler per generation session.
 */
public final class Sampler {

    private static final int TOP_P_FIRST_TRY = 256;

    private final SamplerSettings settings;
    private final int vocab;              // the tokenizer's ids: only [0, vocab) are ever chosen
    private final SplittableRandom random;
    private final float[] logits;         // [vocab] this step's logits after penalties
    private final long[] candidates;      // [vocab] packed (order key << 32 | id), first `count` are alive
    private final double[] weights;       // [vocab] exp((logit - max) / T) of the survivors, then probabilities
    private int count;                    // alive candidates
    private boolean all;                  // every id is alive and candidates[] is not filled yet
    private final int[] history;          // ring buffer of the last repeatLastN accepted tokens
    private int historyNext, historySize;
    private final boolean[] seen;         // [vocab] scratch for penalizing each distinct token once

    /**
     * @param tokenizerVocab the number of ids the tokenizer defines (rows at or beyond it are never sampled)
     * @param contextLength  what repeatLastN = -1 means (the whole context)
     */
    public Sampler(SamplerSettings settings, int tokenizerVocab, int contextLength) {
        if (tokenizerVocab <= 0) throw new IllegalArgumentException("tokenizerVocab must be > 0, got " + tokenizerVocab);
        this.settings = settings;
        this.vocab = tokenizerVocab;
        this.random = new SplittableRandom(settings.seed());
        this.logits = new float[vocab];
        this.candidates = new long[vocab];
        this.weights = new double[vocab];
        int lastN = settings.repeatLastN() == -1 ? Math.max(contextLength, 0) : settings.repeatLastN();
        this.history = new int[settings.repeatPenalty() == 1f ? 0 : lastN];
        this.seen = new boolean[history.length > 0 ? vocab : 0];
    }

    public SamplerSettings settings() {
        return settings;
    }

    /** Records a token in the repeat-penalty window (call it for prompt tokens; {@link #sample} calls it itself). */
    public void accept(int token) {
        if (history.length == 0) return;
        history[historyNext] = token;
        historyNext = (historyNext + 1) % history.length;
        historySize = Math.min(historySize + 1, history.length);
    }

    /** Forgets the repeat-penalty window (the random generator keeps going). */
    public void reset() {
        historyNext = 0;
        historySize = 0;
    }

    /** Chooses the next token from {@code modelLogits[0..tokenizerVocab)} and accepts it. */
    public int sample(float[] modelLogits) {
        checkLength(modelLogits.length);
        System.arraycopy(modelLogits, 0, logits, 0, vocab);
        return sampleLoaded();
    }

    /** The same, for logits held in native memory (float32, native byte order). */
    public int sample(MemorySegment modelLogits) {
        checkLength(modelLogits.byteSize() / Float.BYTES);
        MemorySegment.copy(modelLogits, ValueLayout.JAVA_FLOAT_UNALIGNED, 0, logits, 0, vocab);
        return sampleLoaded();
    }

    /** The surviving tokens and their final probabilities (after temperature), for tests and diagnostics. */
    public record Distribution(int[] ids, double[] probabilities) {
        public double probabilityOf(int id) {
            for (int i = 0; i < ids.length; i++) if (ids[i] == id) return probabilities[i];
            return 0;
        }
    }

    /**
     * The distribution the next {@link #sample} call would draw from for these logits (greedy: the argmax with
     * probability 1). Does not accept a token nor use the generator.
     */
    public Distribution distribution(float[] modelLogits) {
        checkLength(modelLogits.length);
        System.arraycopy(modelLogits, 0, logits, 0, vocab);
        prepareLogits();
        if (settings.greedy()) return new Distribution(new int[] {argmax()}, new double[] {1.0});
        filterAndWeigh();
        int[] ids = new int[count];
        double[] probabilities = new double[count];
        for (int i = 0; i < count; i++) {
            ids[i] = idOf(candidates[i]);
            probabilities[i] = weights[i];
        }
        return new Distribution(ids, probabilities);
    }

    private void checkLength(long length) {
        if (length < vocab) {
            throw new IllegalArgumentException("logits hold " + length + " values, the tokenizer has " + vocab + " ids");
        }
    }

    private int sampleLoaded() {
        prepareLogits();
        int token;
        if (settings.greedy()) {
            token = argmax();
        } else {
            filterAndWeigh();
            token = draw();
        }
        accept(token);
        return token;
    }

    /** NaN never wins, +inf is clamped so softmax stays finite; then the repeat penalty. */
    private void prepareLogits() {
        boolean anyFinite = false;
        for (int i = 0; i < vocab; i++) {
            float v = logits[i];
            if (Float.isNaN(v)) logits[i] = Float.NEGATIVE_INFINITY;
            else if (v == Float.POSITIVE_INFINITY) logits[i] = Float.MAX_VALUE;
            else if (v == 0) logits[i] = 0f; // -0.0 ties with +0.0
            if (logits[i] != Float.NEGATIVE_INFINITY) anyFinite = true;
        }
        if (!anyFinite) throw new IllegalStateException("every logit is NaN or -infinity: nothing can be sampled");
        applyRepeatPenalty();
    }

    private void applyRepeatPenalty() {
        if (historySize == 0) return;
        float penalty = settings.repeatPenalty();
        int start = (historyNext - historySize + history.length) % history.length;
        for (int i = 0; i < historySize; i++) {
            int id = history[(start + i) % history.length];
            if (id < 0 || id >= vocab || seen[id]) continue;
            seen[id] = true;
            float v = logits[id];
            logits[id] = v <= 0 ? v * penalty : v / penalty;
        }
        for (int i = 0; i < historySize; i++) {
            int id = history[(start + i) % history.length];
            if (id >= 0 && id < vocab) seen[id] = false;
        }
    }

    private int argmax() {
        int best = 0;
        for (int i = 1; i < vocab; i++) if (logits[i] > logits[best]) best = i;
        return best;
    }

    /** top-k, top-p, min-p, then temperature softmax into weights[0..count) (normalized). */
    private void filterAndWeigh() {
        all = true; // every id is a candidate; candidates[] is filled only when that is needed
        int k = settings.topK();
        if (k > 0 && k < vocab) {
            selectBest(k);
            count = k;
            all = false;
        }
        if (settings.topP() < 1f) topP(settings.topP());
        if (settings.minP() > 0f) minP(settings.minP());
        materialize();
        weigh(settings.temperature());
    }

    private void materialize() {
        if (!all) return;
        for (int i = 0; i < vocab; i++) candidates[i] = pack(logits[i], i);
        count = vocab;
        all = false;
    }

    /** Keeps the smallest most-likely set whose probability (temperature 1) reaches p. */
    private void topP(float p) {
        double max = Double.NEGATIVE_INFINITY;
        double sum = 0;
        if (all) {
            for (int i = 0; i < vocab; i++) max = Math.max(max, logits[i]);
            for (int i = 0; i < vocab; i++) sum += Math.exp(logits[i] - max);
            // the nucleus is usually small: sort only the best 256 unless they do not reach p
            int first = Math.min(TOP_P_FIRST_TRY, vocab);
            selectBest(first);
            int kept = nucleus(first, p, max, sum);
            if (kept > 0) {
                count = kept;
                all = false;
                return;
            }
            materialize();
            Arrays.sort(candidates, 0, count);
        } else {
            for (int i = 0; i < count; i++) max = Math.max(max, logits[idOf(candidates[i])]);
            for (int i = 0; i < count; i++) sum += Math.exp(logits[idOf(candidates[i])] - max);
        }
        int kept = nucleus(count, p, max, sum);
        count = kept > 0 ? kept : count;
    }

    /** Length of the shortest prefix of the sorted candidates[0..limit) whose probability is >= p, or 0. */
    private int nucleus(int limit, float p, double max, double sum) {
        double cumulative = 0;
        for (int i = 0; i < limit; i++) {
            cumulative += Math.exp(logits[idOf(candidates[i])] - max) / sum;
            if (cumulative >= p) return i + 1;
        }
        return 0;
    }

    /** Keeps tokens with logit >= max logit + ln(p): probability at least p times the best one's. */
    private void minP(float p) {
        materialize();
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < count; i++) max = Math.max(max, logits[idOf(candidates[i])]);
        float threshold = max + (float) Math.log(p);
        int kept = 0;
        for (int i = 0; i < count; i++) {
            long c = candidates[i];
            if (logits[idOf(c)] >= threshold) candidates[kept++] = c; // keeps the order
        }
        count = kept;
    }

    private void weigh(float temperature) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < count; i++) max = Math.max(max, logits[idOf(candidates[i])] / (double) temperature);
        double sum = 0;
        for (int i = 0; i < count; i++) {
            double w = Math.exp(logits[idOf(candidates[i])] / (double) temperature - max);
            weights[i] = w;
            sum += w;
        }
        for (int i = 0; i < count; i++) weights[i] /= sum;
    }

    private int draw() {
        double target = random.nextDouble();
        double cumulative = 0;
        int last = 0;
        for (int i = 0; i < count; i++) {
            if (weights[i] == 0) continue;
            last = i;
            cumulative += weights[i];
            if (cumulative > target) return idOf(candidates[i]);
        }
        return idOf(candidates[last]); // rounding left the sum a hair below target
    }

    /**
     * Puts the best n of all ids into candidates[0..n), sorted: a max-heap of the n best keys while scanning the
     * logits once, O(vocab log n); most logits fail the first float comparison.
     */
    private void selectBest(int n) {
        for (int i = 0; i < n; i++) candidates[i] = pack(logits[i], i);
        for (int i = n / 2 - 1; i >= 0; i--) siftDown(i, n);
        float worst = logits[idOf(candidates[0])];
        for (int i = n; i < vocab; i++) {
            float v = logits[i];
            // ids arrive in increasing order, so a tie with the worst kept loses (its id is larger)
            if (v <= worst) continue;
            candidates[0] = pack(v, i);
            siftDown(0, n);
            worst = logits[idOf(candidates[0])];
        }
        Arrays.sort(candidates, 0, n);
    }

    private void siftDown(int i, int n) {
        long x = candidates[i];
        while (true) {
            int child = 2 * i + 1;
            if (child >= n) break;
            if (child + 1 < n && candidates[child + 1] > candidates[child]) child++;
            if (candidates[child] <= x) break;
            candidates[i] = candidates[child];
            i = child;
        }
        candidates[i] = x;
    }

    /**
     * A key whose ascending order is descending logit, then ascending id: the float's bits made monotonic as a
     * signed int, complemented to reverse it, in the high half; the id in the low half.
     */
    static long pack(float logit, int id) {
        int bits = Float.floatToRawIntBits(logit);
        int monotonic = bits ^ ((bits >> 31) & 0x7fffffff);
        return ((long) ~monotonic << 32) | (id & 0xffffffffL);
    }

    private static int idOf(long packed) {
        return (int) packed;
    }
}
