package aya.model;

import aya.kernels.JavaKernels;
import aya.kernels.Kernels;
import aya.kernels.NativeKernels;
import aya.weights.Npy;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The native backend with every ISA this CPU can run (each forced in turn) against the Java backend and against
 * transformers, on the HF reference checkpoints: logits within 1e-4 of max |logit| of both, in one prefill and in
 * token-by-token decode (the decode path uses the matrix-vector kernels, prefill the blocked ones).
 */
class NativeModelParityTest {

    static final double TOLERANCE = 1e-4;

    /** The Java backend's logits per fixture and feed, computed once for all ISAs. */
    private static final Map<String, float[]> JAVA_LOGITS = new HashMap<>();

    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        for (String isa : List.of("scalar", "avx2", "avx512", "neon"))
            for (String fixture : ModelFixtures.NAMES)
                for (int feed : new int[]{0, 1})
                    out.add(Arguments.of(isa, fixture, feed));
        return out.stream();
    }

    @AfterAll
    static void backToDefaultIsa() {
        if (NativeKernels.isaAvailable("auto")) NativeKernels.load("auto");
    }

    /** All logits [tokens, vocab] of the fixture's input ids, fed {@code feed} tokens at a time (0 = one prefill). */
    static float[] logits(Kernels kernels, String fixture, int feed) {
        int[] ids = ModelFixtures.inputIds(fixture);
        try (AyaForward model = AyaForward.load(ModelFixtures.dir(fixture), kernels, 2);
             AyaForward.State state = model.newState(ids.length, feed == 0 ? AyaForward.DEFAULT_MAX_BLOCK : feed)) {
            int vocab = model.config().vocabSize();
            float[] got = new float[ids.length * vocab];
            int step = feed == 0 ? ids.length : feed;
            for (int start = 0; start < ids.length; start += step) {
                int[] piece = Arrays.copyOfRange(ids, start, Math.min(ids.length, start + step));
                int base = start;
                model.forwardAll(state, piece, (i, row) ->
                        MemorySegment.copy(row, ValueLayout.JAVA_FLOAT, 0, got, (base + i) * vocab, vocab));
            }
            return got;
        }
    }

    @ParameterizedTest(name = "native {0} {1} feed {2}")
    @MethodSource("cases")
    void nativeMatchesJavaAndTransformers(String isa, String fixture, int feed) {
        Assumptions.assumeTrue(NativeKernels.isaAvailable(isa), isa + " is not available on this machine");
        Npy.Matrix ref = Npy.read(ModelFixtures.dir(fixture).resolve("logits.npy"));
        float[] java = JAVA_LOGITS.computeIfAbsent(fixture + "/" + feed, key -> logits(new JavaKernels(), fixture, feed));
        float[] nat = logits(NativeKernels.load(isa), fixture, feed);
        double maxRef = 0, vsRef = 0, vsJava = 0;
        for (int i = 0; i < nat.length; i++) {
            maxRef = Math.max(maxRef, Math.abs(ref.data()[i]));
            vsRef = Math.max(vsRef, nanIsWorst(nat[i] - ref.data()[i]));
            vsJava = Math.max(vsJava, nanIsWorst(nat[i] - java[i]));
        }
        System.out.printf("native %s %s feed %d: max |error| vs transformers %.3g, vs java %.3g (max |logit| %.3g)%n",
                isa, fixture, feed, vsRef, vsJava, maxRef);
        assertTrue(maxRef > 1, "reference logits are not degenerate");
        assertTrue(vsRef <= TOLERANCE * maxRef, String.format("native %s vs transformers: max error %.3g > %.0e x %.3g", isa, vsRef, TOLERANCE, maxRef));
        assertTrue(vsJava <= TOLERANCE * maxRef, String.format("native %s vs java: max difference %.3g > %.0e x %.3g", isa, vsJava, TOLERANCE, maxRef));
    }

    private static double nanIsWorst(double d) {
        return Double.isNaN(d) ? Double.POSITIVE_INFINITY : Math.abs(d);
    }
}
