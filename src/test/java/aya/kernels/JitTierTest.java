package aya.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Java backend's matrix products and layerNorm give the same bits whichever JIT tier runs them. The interpreter and C1 run the Vector API's Java
 * fallbacks, C2 its intrinsics; where the two round differently a kernel's result depends on whether (and on which
 * thread) it has been compiled yet. A child JVM without tiers ({@code -XX:-TieredCompilation -Xbatch}) runs every
 * kernel once interpreted, then often enough for C2 to compile it, then once more, and compares the bits.
 */
class JitTierTest {

    /** C2 compiles a method after this many calls (-Xbatch: before the next one runs); the warm-up makes twice as many. */
    private static final int COMPILE_THRESHOLD = 100;

    @Test
    void everyJavaKernelGivesTheSameBitsInterpretedAndCompiledByC2() throws IOException, InterruptedException {
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        List<String> command = new ArrayList<>(List.of(java.toString(),
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-XX:-TieredCompilation", "-Xbatch", "-XX:CompileThreshold=" + COMPILE_THRESHOLD,
                "-cp", System.getProperty("java.class.path"), JitTierTest.class.getName()));
        Process child = new ProcessBuilder(command).redirectErrorStream(true).start();
        child.getOutputStream().close();
        String output = new String(child.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(child.waitFor(60, TimeUnit.SECONDS), "the child JVM did not finish");
        assertEquals(0, child.exitValue(), output);
        // the canaries are the Vector API calls themselves: if C2 gave their fallback's bits on this JVM, the child
        // may not have reached C2 code at all, and equal kernels would prove nothing
        Assumptions.assumeTrue(output.contains("canary differs"), "no canary changed bits under C2 here:\n" + output);
        for (String line : output.lines().toList()) {
            assertTrue(!line.startsWith("kernel differs"), output);
        }
        assertTrue(output.contains("kernels compared"), output);
    }

    /** The child: every case once cold, then warm, then once more; one line per case whose bits changed. */
    public static void main(String[] args) {
        try (Arena arena = Arena.ofConfined(); JavaKernels k = new JavaKernels(); Parallel pool = new Parallel(1)) {
            Map<String, Supplier<float[]>> kernels = cases(k, arena, pool);
            Map<String, Supplier<float[]>> canaries = canaries(arena);
            Map<String, float[]> cold = new LinkedHashMap<>();
            kernels.forEach((name, run) -> cold.put(name, run.get()));
            canaries.forEach((name, run) -> cold.put(name, run.get()));
            for (int i = 0; i < 2 * COMPILE_THRESHOLD; i++) {
                kernels.values().forEach(Supplier::get);
                canaries.values().forEach(Supplier::get);
            }
            kernels.forEach((name, run) -> report("kernel", name, cold.get(name), run.get()));
            canaries.forEach((name, run) -> report("canary", name, cold.get(name), run.get()));
            System.out.println(kernels.size() + " kernels compared");
        }
    }

    private static void report(String kind, String name, float[] cold, float[] warm) {
        for (int i = 0; i < cold.length; i++) {
            if (Float.floatToRawIntBits(cold[i]) != Float.floatToRawIntBits(warm[i])) {
                System.out.println(kind + " differs: " + name + " [" + i + "] " + cold[i] + " then " + warm[i]);
                return;
            }
        }
    }

    /** One call of each kernel that reduces across lanes, on fixed random data. */
    private static Map<String, Supplier<float[]>> cases(JavaKernels k, Arena arena, Parallel pool) {
        SplittableRandom rnd = new SplittableRandom(11);
        Map<String, Supplier<float[]>> cases = new LinkedHashMap<>();
        int rows = 4, inDim = 256, prefill = 4; // prefill: GEMM_MIN_TOKENS or more
        MemorySegment x = gaussian(arena, rnd, prefill * inDim, 1);
        for (WeightType type : List.of(WeightType.F32, WeightType.BF16, WeightType.F16)) {
            MemorySegment w = gaussian(arena, rnd, rows * inDim, 0.5f);
            if (type != WeightType.F32) {
                MemorySegment narrow = arena.allocate(rows * inDim * 2L, 64);
                for (long i = 0; i < rows * inDim; i++) {
                    float v = w.getAtIndex(ValueLayout.JAVA_FLOAT, i);
                    narrow.setAtIndex(ValueLayout.JAVA_SHORT, i, type == WeightType.F16 ? Float.floatToFloat16(v)
                            : (short) (Float.floatToRawIntBits(v) >>> 16));
                }
                w = narrow;
            }
            MemorySegment weights = w;
            for (int tokens : new int[]{1, prefill}) {
                cases.put(type + " x " + tokens, () -> product(rows, tokens,
                        out -> k.matmul(type, weights, x, out, tokens, inDim, rows, 0, rows)));
            }
            if (type == WeightType.BF16) {
                for (int tokens : new int[]{1, prefill}) {
                    cases.put("BF16 bf16-activations x " + tokens, () -> product(rows, tokens,
                            out -> k.matmulBf16Activations(weights, x, out, tokens, inDim, rows, 0, rows)));
                }
            }
        }
        for (WeightType type : List.of(WeightType.Q8_0, WeightType.Q4_0, WeightType.Q5_0, WeightType.Q4_K, WeightType.Q6_K)) {
            MemorySegment w = KQuantTest.randomMatrix(arena, type, rows, inDim, rnd);
            PackedMatrix packed = k.pack(type, w, rows, inDim, pool);
            for (int tokens : new int[]{1, prefill}) {
                cases.put(type + " x " + tokens, () -> product(rows, tokens,
                        out -> k.matmul(type, w, x, out, tokens, inDim, rows, 0, rows)));
                if (packed != null) {
                    cases.put(type + " packed x " + tokens, () -> product(rows, tokens,
                            out -> k.matmul(packed, x, out, tokens, rows, 0, rows)));
                }
            }
        }
        // not attention, softmax and swiglu: their lanewise(EXP) still rounds otherwise under C2 (docs/kernels.md)
        MemorySegment norm = gaussian(arena, rnd, inDim, 1);
        cases.put("layerNorm", () -> product(inDim, prefill, out -> k.layerNorm(x, norm, out, prefill, inDim, 1e-5f)));
        return cases;
    }

    /** The Vector API operations that C2 rounds otherwise than the fallbacks on x86 (JDK 25). */
    private static Map<String, Supplier<float[]>> canaries(Arena arena) {
        MemorySegment v = gaussian(arena, new SplittableRandom(5), 64 * JavaKernels.F.length(), 3);
        Map<String, Supplier<float[]>> canaries = new LinkedHashMap<>();
        canaries.put("reduceLanes(ADD)", () -> {
            float[] sums = new float[64];
            for (int i = 0; i < sums.length; i++) {
                sums[i] = FloatVector.fromMemorySegment(JavaKernels.F, v, i * JavaKernels.F.length() * 4L,
                        JavaKernels.NATIVE).reduceLanes(VectorOperators.ADD);
            }
            return sums;
        });
        canaries.put("lanewise(EXP)", () -> {
            MemorySegment e = Arena.ofAuto().allocate(v.byteSize(), 64);
            for (long at = 0; at < v.byteSize(); at += JavaKernels.F.vectorByteSize()) {
                FloatVector.fromMemorySegment(JavaKernels.F, v, at, JavaKernels.NATIVE).lanewise(VectorOperators.EXP)
                        .intoMemorySegment(e, at, JavaKernels.NATIVE);
            }
            return e.toArray(ValueLayout.JAVA_FLOAT);
        });
        return canaries;
    }

    private interface Product {
        void into(MemorySegment out);
    }

    private static float[] product(int rows, int tokens, Product p) {
        MemorySegment out = Arena.ofAuto().allocate((long) rows * tokens * 4, 64);
        p.into(out);
        return out.toArray(ValueLayout.JAVA_FLOAT);
    }

    private static MemorySegment gaussian(Arena arena, SplittableRandom rnd, int n, float scale) {
        MemorySegment s = arena.allocate(n * 4L, 64);
        for (int i = 0; i < n; i++) s.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) (rnd.nextGaussian() * scale));
        return s;
    }
}
