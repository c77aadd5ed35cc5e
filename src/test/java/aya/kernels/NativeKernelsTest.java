package aya.kernels;

import aya.AyaException;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static org.junit.jupiter.api.Assertions.*;

/** Loading, ISA selection and the argument checks that keep bad calls from crashing the JVM. */
class NativeKernelsTest {

    @Test
    void platformNamesMatchTheJarFolders() {
        String platform = NativeLibrary.platform();
        String arch = System.getProperty("os.arch");
        if (System.getProperty("os.name").startsWith("Linux") && (arch.equals("amd64") || arch.equals("x86_64"))) {
            assertEquals("linux-x86_64", platform);
        }
        assertNotNull(platform, "this test machine should be a supported platform");
    }

    @Test
    void loadsAndNamesTheIsa() {
        NativeKernels k = NativeKernels.load("auto");
        assertTrue(k.name().startsWith("native ("), k.name());
        assertTrue(NativeKernels.isaAvailable(k.isa()), k.isa());
        assertEquals("native (scalar)", NativeKernels.load("scalar").name());
        NativeKernels.load("auto");
    }

    @Test
    void unknownOrMissingIsaFailsWithTheReason() {
        AyaException unknown = assertThrows(AyaException.class, () -> NativeKernels.load("sse9"));
        assertTrue(unknown.getMessage().contains("unknown ISA 'sse9'"), unknown.getMessage());
        String foreign = "aarch64".equals(System.getProperty("os.arch")) ? "avx2" : "neon";
        AyaException missing = assertThrows(AyaException.class, () -> NativeKernels.load(foreign));
        assertTrue(missing.getMessage().contains(foreign), missing.getMessage());
        assertFalse(NativeKernels.isaAvailable(foreign));
        assertFalse(NativeKernels.isaAvailable("sse9"));
    }

    @Test
    void undersizedSegmentsAreRejectedBeforeReachingC() {
        Kernels k = NativeKernels.load("auto");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment w = arena.allocate(4 * 8 * 16, 64), x = arena.allocate(4 * 16, 64), out = arena.allocate(4 * 8, 64);
            k.matmul(WeightType.F32, w, x, out, 1, 16, 8, 0, 8); // fits exactly
            assertThrows(IllegalArgumentException.class, () -> k.matmul(WeightType.F32, w, x, out, 1, 16, 8, 0, 9));
            assertThrows(IllegalArgumentException.class, () -> k.matmul(WeightType.F32, w, x, out, 2, 16, 8, 0, 8));
            assertThrows(IllegalArgumentException.class, () -> k.matmul(WeightType.F32, w, x, out, 1, 16, 8, 5, 3));
            assertThrows(UnsupportedOperationException.class, () -> k.matmul(WeightType.Q8_0, w, w, out, 1, 32, 8, 0, 1));
            assertThrows(IllegalArgumentException.class, () -> k.embed(WeightType.BF16, w, 100, 16, out));
            assertThrows(IllegalArgumentException.class, () -> k.softmax(out, 9));
            assertThrows(IllegalArgumentException.class, () -> k.swiglu(out, x, 0, 9));
            MemorySegment cache = arena.allocate(4 * 4 * 16, 64), scratch = arena.allocate(4 * 4, 64);
            // position 4 sees 5 keys but the cache holds 4
            assertThrows(IllegalArgumentException.class,
                    () -> k.attention(x, cache, cache, x, 1, 4, 1, 1, 16, 4, 0, 1f, scratch, 0, 1));
            // a heap segment cannot be passed to C: an exception, not a crash
            MemorySegment heap = MemorySegment.ofArray(new float[8]);
            assertThrows(IllegalArgumentException.class, () -> k.softmax(heap, 8));
        }
    }
}
