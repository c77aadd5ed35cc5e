package aya.model;

import aya.kernels.Backend;
import aya.kernels.Backends;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The batched forward pass against each sequence run alone: random steps mixing prefill chunks (of different sizes,
 * some wanting every row's logits, some the last, some none) and one-token decodes of sequences at different
 * positions (sliding rings wrapped or not) must give each sequence the logits it gets alone with the same chunks,
 * within 1e-5 x max|logit|; greedy generation of several sequences stepped together gives identical ids.
 */
class BatchedForwardTest {

    static final double TOLERANCE = 1e-5;
    /**
     * With bf16 activations every row (prefill and decode) is rounded to bf16, and rounding is chaotic: the f32
     * rounding-level difference of a GEMM over more rows can move a value across a bf16 boundary (see
     * Bf16ActivationLogitsTest), so sequences in a bf16 batch get the same bound as bf16 vs f32 there.
     */
    static final double BF16_PREFILL_TOLERANCE = 0.02;

    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        List<Path> dirs = new ArrayList<>();
        for (String name : ModelFixtures.NAMES) dirs.add(ModelFixtures.dir(name));
        dirs.add(Path.of("src/test/resources/chat/tiny-chat"));
        for (String backend : Backends.available())
            for (Path dir : dirs)
                out.add(Arguments.of(backend, dir, Activations.F32));
        for (String backend : Backends.available()) // bf16 activations: every row rounded, in one product
            out.add(Arguments.of(backend, ModelFixtures.dir("bf16-untied-sharded"), Activations.BF16));
        return out.stream();
    }

    /** One sequence's planned steps: per step, how many tokens it feeds (0 = not in that step) and which logits it wants. */
    record Plan(int[] ids, int[] chunk, int[] logitsFrom) {
    }

    static List<Plan> randomPlans(Random random, int sequences, int steps, int vocab, int maxBlock, int context,
                                  boolean firstOnlyDecodes) {
        List<Plan> plans = new ArrayList<>();
        for (int s = 0; s < sequences; s++) {
            int block = s == 0 && firstOnlyDecodes ? 1 : maxBlock;
            int[] chunk = new int[steps], from = new int[steps];
            int total = 0;
            int firstStep = random.nextInt(3); // sequences join at different steps
            for (int t = firstStep; t < steps; t++) {
                int prefill = total == 0 || random.nextInt(4) == 0 ? 1 + random.nextInt(block) : 1; // mostly decodes once started
                int n = random.nextInt(6) == 0 ? 0 : Math.min(prefill, context - total);
                if (n == 0) continue;
                chunk[t] = n;
                from[t] = switch (random.nextInt(3)) {
                    case 0 -> 0;       // every row
                    case 1 -> n - 1;   // the last row
                    default -> n;      // none
                };
                total += n;
            }
            int[] ids = new int[total];
            for (int i = 0; i < total; i++) ids[i] = random.nextInt(vocab);
            plans.add(new Plan(ids, chunk, from));
        }
        return plans;
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("cases")
    void eachSequenceGetsTheLogitsItGetsAlone(String backend, Path dir, Activations activations) {
        int maxBlock = 6, sequences = 4, steps = 14;
        try (AyaForward model = AyaForward.load(dir, Backend.open(backend), 2)) {
            model.activations(activations);
            int vocab = model.config().vocabSize();
            int context = Math.min(model.config().maxPositionEmbeddings(), 64);
            for (long seed = 1; seed <= 2; seed++) {
                boolean bf16 = activations == Activations.BF16;
                List<Plan> plans = randomPlans(new Random(seed), sequences, steps, vocab, maxBlock, context, bf16);
                // alone: each sequence through forwardAll with the same chunks, every row's logits kept
                List<float[][]> alone = new ArrayList<>();
                for (Plan p : plans) alone.add(alone(model, p, steps, context, maxBlock));

                List<AyaForward.State> states = new ArrayList<>();
                try (AyaForward.Scratch scratch = model.newScratch(sequences * maxBlock, context)) {
                    for (int s = 0; s < sequences; s++) states.add(model.newBatchState(context, maxBlock));
                    int[] fed = new int[sequences];
                    int[] received = new int[sequences];
                    for (int t = 0; t < steps; t++) {
                        List<AyaForward.Sequence> batch = new ArrayList<>();
                        List<Integer> who = new ArrayList<>();
                        for (int s = 0; s < sequences; s++) {
                            Plan p = plans.get(s);
                            int n = p.chunk()[t];
                            if (n == 0) continue;
                            batch.add(new AyaForward.Sequence(states.get(s), Arrays.copyOfRange(p.ids(), fed[s], fed[s] + n), p.logitsFrom()[t]));
                            who.add(s);
                        }
                        int[] base = fed.clone();
                        String what = dir.getFileName() + " seed " + seed + " step " + t;
                        model.forward(scratch, batch, (e, i, row) -> {
                            int s = who.get(e);
                            float[] want = alone.get(s)[base[s] + i];
                            double tolerance = bf16 ? BF16_PREFILL_TOLERANCE : TOLERANCE;
                            assertClose(want, row, tolerance, what + " sequence " + s + " token " + (base[s] + i));
                            received[s]++;
                        });
                        for (int e = 0; e < batch.size(); e++) {
                            int s = who.get(e);
                            fed[s] += batch.get(e).tokens().length;
                            assertEquals(fed[s], states.get(s).position());
                        }
                    }
                    for (int s = 0; s < sequences; s++) {
                        Plan p = plans.get(s);
                        int wanted = 0;
                        for (int t = 0; t < steps; t++) wanted += p.chunk()[t] - Math.min(p.chunk()[t], p.logitsFrom()[t]);
                        assertEquals(wanted, received[s], "every wanted row arrives once");
                    }
                } finally {
                    states.forEach(AyaForward.State::close);
                }
            }
        }
    }

    /** Logits [position][V] of a plan's ids fed alone in its chunks. */
    static float[][] alone(AyaForward model, Plan p, int steps, int context, int maxBlock) {
        int vocab = model.config().vocabSize();
        float[][] out = new float[p.ids().length][];
        try (AyaForward.State state = model.newState(context, maxBlock)) {
            int fed = 0;
            for (int t = 0; t < steps; t++) {
                int n = p.chunk()[t];
                if (n == 0) continue;
                int base = fed;
                model.forwardAll(state, Arrays.copyOfRange(p.ids(), fed, fed + n), (i, row) -> {
                    float[] copy = new float[vocab];
                    MemorySegment.copy(row, ValueLayout.JAVA_FLOAT, 0, copy, 0, vocab);
                    out[base + i] = copy;
                });
                fed += n;
            }
        }
        return out;
    }

    static void assertClose(float[] want, MemorySegment got, double tolerance, String what) {
        double max = 0, err = 0;
        for (int c = 0; c < want.length; c++) {
            max = Math.max(max, Math.abs(want[c]));
            double d = Math.abs(want[c] - got.getAtIndex(ValueLayout.JAVA_FLOAT, c));
            err = Double.isNaN(d) ? Double.POSITIVE_INFINITY : Math.max(err, d);
        }
        assertTrue(max > 0, what + ": degenerate logits");
        assertTrue(err <= tolerance * max, what + ": max abs error " + err + " exceeds " + tolerance + " x " + max);
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("cases")
    void greedyGenerationTogetherEqualsAlone(String backend, Path dir, Activations activations) {
        int sequences = 5, newTokens = 12;
        try (AyaForward model = AyaForward.load(dir, Backend.open(backend), 2)) {
            model.activations(activations);
            int vocab = model.config().vocabSize();
            Random random = new Random(42);
            int[][] prompts = new int[sequences][];
            for (int s = 0; s < sequences; s++) {
                prompts[s] = new int[1 + random.nextInt(20)]; // different lengths: different positions while decoding
                for (int i = 0; i < prompts[s].length; i++) prompts[s][i] = random.nextInt(vocab);
            }
            int context = 40;
            int[][] alone = new int[sequences][newTokens];
            for (int s = 0; s < sequences; s++) {
                try (AyaForward.State state = model.newState(context, 8)) {
                    MemorySegment logits = model.forward(state, prompts[s]);
                    for (int k = 0; k < newTokens; k++) {
                        alone[s][k] = argmax(logits);
                        logits = model.forward(state, new int[] {alone[s][k]});
                    }
                }
            }
            int[][] together = new int[sequences][newTokens];
            List<AyaForward.State> states = new ArrayList<>();
            try (AyaForward.Scratch scratch = model.newScratch(sequences * 8, context)) {
                for (int s = 0; s < sequences; s++) states.add(model.newBatchState(context, 8));
                int[] made = new int[sequences], prefilled = new int[sequences];
                // step until every sequence has its tokens: prompts go in chunks of up to 8 while others decode
                while (Arrays.stream(made).anyMatch(m -> m < newTokens)) {
                    List<AyaForward.Sequence> batch = new ArrayList<>();
                    List<Integer> who = new ArrayList<>();
                    for (int s = 0; s < sequences; s++) {
                        if (made[s] == newTokens) continue;
                        int[] tokens;
                        if (prefilled[s] < prompts[s].length) {
                            int n = Math.min(8, prompts[s].length - prefilled[s]);
                            tokens = Arrays.copyOfRange(prompts[s], prefilled[s], prefilled[s] + n);
                            prefilled[s] += n;
                        } else {
                            tokens = new int[] {together[s][made[s] - 1]};
                        }
                        boolean wantsLogits = prefilled[s] == prompts[s].length;
                        batch.add(new AyaForward.Sequence(states.get(s), tokens, wantsLogits ? tokens.length - 1 : tokens.length));
                        who.add(s);
                    }
                    model.forward(scratch, batch, (e, i, row) -> {
                        int s = who.get(e);
                        together[s][made[s]++] = argmax(row);
                    });
                }
            } finally {
                states.forEach(AyaForward.State::close);
            }
            for (int s = 0; s < sequences; s++) {
                assertArrayEquals(alone[s], together[s], dir.getFileName() + " sequence " + s);
            }
        }
    }

    static int argmax(MemorySegment logits) {
        int n = (int) (logits.byteSize() / Float.BYTES), best = 0;
        for (int i = 1; i < n; i++) {
            if (logits.getAtIndex(ValueLayout.JAVA_FLOAT, i) > logits.getAtIndex(ValueLayout.JAVA_FLOAT, best)) best = i;
        }
        return best;
    }

    static Stream<Arguments> hfCases() {
        List<Arguments> out = new ArrayList<>();
        for (String backend : Backends.available())
            for (String fixture : ModelFixtures.NAMES)
                out.add(Arguments.of(backend, fixture));
        return out.stream();
    }

    /** The fixture's ids prefilled in chunks of 3 inside batches with two other sequences decoding: transformers' logits. */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("hfCases")
    void aSequenceInABatchMatchesTransformers(String backend, String fixture) {
        int[] ids = ModelFixtures.inputIds(fixture);
        aya.weights.Npy.Matrix ref = aya.weights.Npy.read(ModelFixtures.dir(fixture).resolve("logits.npy"));
        try (AyaForward model = AyaForward.load(ModelFixtures.dir(fixture), Backend.open(backend), 2)) {
            int vocab = model.config().vocabSize();
            float[] got = new float[ids.length * vocab];
            Random random = new Random(7);
            try (AyaForward.Scratch scratch = model.newScratch(5, ids.length + 8);
                 AyaForward.State s = model.newBatchState(ids.length, 3);
                 AyaForward.State other1 = model.newBatchState(ids.length + 8, 3);
                 AyaForward.State other2 = model.newBatchState(ids.length + 8, 3)) {
                model.forward(scratch, List.of(new AyaForward.Sequence(other2, new int[] {2, 5, 9}, 3)), (e, i, row) -> { });
                for (int start = 0; start < ids.length; start += 3) {
                    int[] piece = Arrays.copyOfRange(ids, start, Math.min(ids.length, start + 3));
                    int base = start;
                    model.forward(scratch, List.of(
                            new AyaForward.Sequence(other1, new int[] {random.nextInt(vocab)}, 0),
                            new AyaForward.Sequence(s, piece, 0),
                            new AyaForward.Sequence(other2, new int[] {random.nextInt(vocab)}, 1)),
                            (e, i, row) -> {
                                if (e == 1) MemorySegment.copy(row, ValueLayout.JAVA_FLOAT, 0, got, (base + i) * vocab, vocab);
                            });
                }
            }
            AyaForwardParityTest.assertClose(ref, got, fixture + " in a batch");
        }
    }

    @Test
    void badBatchesAreRefusedBeforeAnyWork() {
        try (AyaForward model = AyaForward.load(ModelFixtures.dir("f32-tied"), Backend.open("java"), 1);
             AyaForward.Scratch scratch = model.newScratch(4, 32);
             AyaForward.State a = model.newBatchState(32, 3);
             AyaForward.State b = model.newBatchState(32, 3)) {
            AyaForward.BatchLogitsSink none = (e, i, row) -> { };
            var twice = List.of(new AyaForward.Sequence(a, new int[] {1}, 0), new AyaForward.Sequence(a, new int[] {2}, 0));
            assertThrows(IllegalArgumentException.class, () -> model.forward(scratch, twice, none));
            var overBlock = List.of(new AyaForward.Sequence(a, new int[] {1, 2, 3, 4}, 0));
            assertThrows(IllegalArgumentException.class, () -> model.forward(scratch, overBlock, none));
            var overRows = List.of(new AyaForward.Sequence(a, new int[] {1, 2, 3}, 0), new AyaForward.Sequence(b, new int[] {1, 2}, 0));
            assertThrows(IllegalArgumentException.class, () -> model.forward(scratch, overRows, none));
            var badId = List.of(new AyaForward.Sequence(a, new int[] {1}, 0), new AyaForward.Sequence(b, new int[] {99999}, 0));
            assertThrows(aya.AyaException.class, () -> model.forward(scratch, badId, none));
            assertEquals(0, a.position(), "nothing was fed");
            assertEquals(0, b.position());
            assertThrows(IllegalArgumentException.class, () -> model.forward(a, new int[] {1}), "a batch state has no activations");
            try (AyaForward.Scratch small = model.newScratch(4, 8)) {
                var bigState = List.of(new AyaForward.Sequence(a, new int[] {1}, 0));
                assertThrows(IllegalArgumentException.class, () -> model.forward(small, bigState, none));
            }
        }
    }
}
