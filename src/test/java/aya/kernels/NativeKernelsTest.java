package aya.kernels;

import aya.AyaException;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

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
            k.matmul(WeightType.Q8_0, w, w, out, 1, 32, 8, 0, 8); // 8 rows of one 34-byte block fit in 512 bytes
            assertThrows(IllegalArgumentException.class, () -> k.matmul(WeightType.Q8_0, w, w, out, 1, 32, 16, 0, 16));
            assertThrows(IllegalArgumentException.class, () -> k.matmul(WeightType.Q4_0, w, w, out, 1, 40, 8, 0, 1));
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

    /** Runs {@link Probe} in a fresh JVM (the library loads once per JVM) and returns its stdout + stderr. */
    static String probe(Map<String, String> env, String... jvmArgs) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("--enable-native-access=ALL-UNNAMED");
        cmd.addAll(List.of(jvmArgs));
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), Probe.class.getName()));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().remove("AYA_ISA");
        pb.environment().putAll(env);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "probe JVM hung");
        return out;
    }

    /** Loads the native kernels the way the CLI does and prints the backend name or the one-line error. */
    public static final class Probe {
        public static void main(String[] args) {
            try {
                System.out.println(NativeKernels.load().name());
            } catch (AyaException e) {
                System.out.println("error: " + e.getMessage());
            }
        }
    }

    @Test
    void ayaIsaEnvironmentVariableForcesThePathOrExplainsWhyNot() throws Exception {
        assertEquals("native (scalar)", probe(Map.of("AYA_ISA", "scalar")));
        String best = NativeKernels.load("auto").isa();
        assertEquals("native (" + best + ")", probe(Map.of()));
        assertEquals("error: native kernels: AYA_ISA=sse9: unknown ISA 'sse9' (expected scalar, avx2, avx512, avx512bf16, neon or auto)",
                probe(Map.of("AYA_ISA", "sse9")));
        for (String isa : List.of("avx2", "avx512", "avx512bf16", "neon")) {
            if (!NativeKernels.isaAvailable(isa)) {
                String out = probe(Map.of("AYA_ISA", isa));
                assertTrue(out.startsWith("error: native kernels: AYA_ISA=" + isa + ": "), out);
                assertTrue(out.contains("does not support") || out.contains("not built"), out);
            }
        }
    }

    @Test
    void aMissingOrBrokenLibraryFileIsReportedWithItsPath(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        Path missing = dir.resolve("nope.so");
        assertEquals("error: native library " + missing + " (from -Daya.native.library) does not exist",
                probe(Map.of(), "-Daya.native.library=" + missing));
        Path notElf = Files.writeString(dir.resolve("libfake.so"), "not a shared library");
        String out = probe(Map.of(), "-Daya.native.library=" + notElf);
        String last = out.substring(out.lastIndexOf('\n') + 1); // the JVM may warn about the file on its own line first
        assertTrue(last.startsWith("error: cannot load native library " + notElf + ": "), out);
        assertTrue(last.contains("header") || last.contains("ELF") || last.contains("too short"), "dlopen's reason: " + last);
    }

    @Test
    void aLibraryForAnotherArchitectureIsReportedByDlopen() throws Exception {
        // the cross build puts the aarch64 library next to ours when a cross compiler is installed
        String foreign = "aarch64".equals(System.getProperty("os.arch")) ? "linux-x86_64" : "linux-aarch64";
        Path lib = Path.of("target/classes/native", foreign, System.mapLibraryName("aya_kernels"));
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.isRegularFile(lib), "no " + foreign + " build here");
        String out = probe(Map.of(), "-Daya.native.library=" + lib.toAbsolutePath());
        String last = out.substring(out.lastIndexOf('\n') + 1);
        assertTrue(last.startsWith("error: cannot load native library " + lib.toAbsolutePath() + ": "), out);
        assertTrue(last.contains("ELF") || last.contains("wrong") || last.contains("AARCH64") || last.contains("AMD 64"),
                "dlopen's reason: " + last);
    }
}
