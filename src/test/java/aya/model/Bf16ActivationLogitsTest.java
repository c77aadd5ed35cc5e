package aya.model;

import aya.AyaException;
import aya.kernels.Backend;
import aya.kernels.Backends;
import aya.weights.Npy;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The opt-in bf16 activations on the bf16 model fixtures, the whole sequence in one prefill and token by token (decode,
 * one token per pass, every position but the first reading the KV cache): against transformers with the input of every
 * nn.Linear rounded to bf16 (logits_bf16act.npy, made by src/test/python/make_bf16act_logits.py), the same computation
 * up to f32 summation order, and against the default f32 path and the HF f32 logits: the error bf16 activations cost,
 * printed (README) and bounded.
 */
class Bf16ActivationLogitsTest {

    static final List<String> BF16_FIXTURES = List.of("bf16-untied-sharded", "hd128-oldconfig");

    /** backend, fixture, tokens per forward pass (0: the whole sequence in one prefill; 1: decode). */
    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        for (String backend : Backends.available())
            for (String fixture : BF16_FIXTURES)
                for (int step : new int[] {0, 1})
                    out.add(Arguments.of(backend, fixture, step));
        return out.stream();
    }

    /** Logits [T * V] of the fixture's ids fed {@code step} at a time (0: all in one prefill). */
    static float[] logits(AyaForward model, int[] ids, int step) {
        int vocab = model.config().vocabSize();
        float[] got = new float[ids.length * vocab];
        try (AyaForward.State state = model.newState(ids.length)) {
            int feed = step == 0 ? ids.length : step;
            for (int start = 0; start < ids.length; start += feed) {
                int[] piece = java.util.Arrays.copyOfRange(ids, start, Math.min(ids.length, start + feed));
                int base = start;
                model.forwardAll(state, piece, (i, row) ->
                        MemorySegment.copy(row, ValueLayout.JAVA_FLOAT, 0, got, (base + i) * vocab, vocab));
            }
        }
        return got;
    }

    static double maxAbs(float[] v) {
        double m = 0;
        for (float f : v) m = Math.max(m, Math.abs(f));
        return m;
    }

    static double maxDiff(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            double d = Math.abs((double) a[i] - b[i]);
            m = Double.isNaN(d) ? Double.POSITIVE_INFINITY : Math.max(m, d);
        }
        return m;
    }

    static double rms(float[] a, float[] b) {
        double sum = 0;
        for (int i = 0; i < a.length; i++) {
            double d = (double) a[i] - b[i];
            sum += d * d;
        }
        return Math.sqrt(sum / a.length);
    }

    @ParameterizedTest(name = "{0} {1} step {2}")
    @MethodSource("cases")
    void followsTransformersWithBf16Inputs(String backend, String fixture, int step) {
        int[] ids = ModelFixtures.inputIds(fixture);
        float[] hfBf16 = Npy.read(ModelFixtures.dir(fixture).resolve("logits_bf16act.npy")).data();
        float[] hfF32 = Npy.read(ModelFixtures.dir(fixture).resolve("logits.npy")).data();
        try (AyaForward model = AyaForward.load(ModelFixtures.dir(fixture), Backend.open(backend), 2)) {
            float[] f32 = logits(model, ids, step);
            model.activations(Activations.BF16);
            assertEquals(Activations.BF16, model.activations());
            float[] bf16 = logits(model, ids, step);
            double scale = maxAbs(hfF32);
            System.out.printf(java.util.Locale.ROOT, "bf16 activations, %s %s %s, max|logit| %.3f: max abs error vs our f32 path "
                    + "%.2e (%.2f%% of max|logit|), vs HF f32 %.2e, vs HF bf16-input %.2e; rms vs HF f32 %.2e, vs HF bf16-input %.2e%n",
                    step == 0 ? "prefill" : "decode", backend, fixture, scale, maxDiff(bf16, f32),
                    100 * maxDiff(bf16, f32) / scale, maxDiff(bf16, hfF32), maxDiff(bf16, hfBf16), rms(bf16, hfF32),
                    rms(bf16, hfBf16));
            // Rounding to bf16 is chaotic: an f32 difference of one ulp (another summation order) can move a value
            // across a rounding boundary, and this random model amplifies such a 2^-8 step to ~1e-2 in the logits
            // (transformers itself in f32 vs f64, both with bf16 inputs, differs by 5e-3). So no 1e-4 match: the
            // logits must be clearly closer to the bf16-input reference than to the f32 one, and stay near both.
            assertTrue(rms(bf16, hfBf16) < 0.7 * rms(bf16, hfF32), "bf16 activations: rms error vs HF bf16-input "
                    + rms(bf16, hfBf16) + " is not clearly below the rms vs HF f32 " + rms(bf16, hfF32));
            assertTrue(maxDiff(bf16, f32) > 1e-3 * scale, "bf16 activations changed the logits by only "
                    + maxDiff(bf16, f32) + ": the bf16 path was not taken");
            assertTrue(maxDiff(bf16, f32) <= 0.02 * scale, "bf16 activations moved the logits by " + maxDiff(bf16, f32)
                    + " (> 2% of max|logit| " + scale + ")");
            assertTrue(maxDiff(bf16, hfBf16) <= 0.02 * scale, "bf16 activations vs HF bf16-input: " + maxDiff(bf16, hfBf16));
        }
    }

    @Test
    void refusedForModelsWithoutBf16Matrices() {
        for (String fixture : List.of("f32-tied", "f16-eos")) {
            try (AyaForward model = AyaForward.load(ModelFixtures.dir(fixture), Backend.open("java"), 1)) {
                AyaException e = assertThrows(AyaException.class, () -> model.activations(Activations.BF16));
                assertTrue(e.getMessage().contains("bf16 weight matrices"), e.getMessage());
                assertFalse(e.getMessage().contains("\n"));
                assertEquals(Activations.F32, model.activations());
                model.activations(Activations.F32); // always fine
            }
        }
    }

    @Test
    void parsesTheFlagValue() {
        assertEquals(Activations.BF16, Activations.parse("bf16"));
        assertEquals(Activations.BF16, Activations.parse("BF16"));
        assertEquals(Activations.F32, Activations.parse("f32"));
        AyaException e = assertThrows(AyaException.class, () -> Activations.parse("fp8"));
        assertEquals("--activations 'fp8': expected f32 or bf16", e.getMessage());
        assertThrows(AyaException.class, () -> Activations.parse(null));
        assertThrows(AyaException.class, () -> Activations.parse(""));
    }
}
