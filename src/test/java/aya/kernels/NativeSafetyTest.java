package aya.kernels;

import aya.AyaException;
import aya.model.AyaForward;
import aya.model.ModelFixtures;
import aya.weights.Npy;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The Java side keeps bad pointers away from C: misaligned segments throw before the call, a checkpoint whose
 * tensors sit at odd offsets is refused at load; and a real model run through the ASan + UBSan build of the
 * library (in a child JVM with libasan preloaded) is clean and gives transformers' logits.
 */
class NativeSafetyTest {

    @Test
    void misalignedSegmentsAreRejectedBeforeReachingC() {
        assumeTrue(Backends.available().contains("native"), "native library not built");
        Kernels k = NativeKernels.load("auto");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment w = arena.allocate(4 * 8 * 16 + 8, 64), x = arena.allocate(4 * 16 + 8, 64), out = arena.allocate(4 * 8 + 8, 64);
            k.matmul(WeightType.F32, w.asSlice(4), x.asSlice(4), out.asSlice(4), 1, 16, 8, 0, 8); // 4-byte aligned: fine
            k.matmul(WeightType.BF16, w.asSlice(2), x, out, 1, 16, 8, 0, 8);                     // bf16 needs 2 bytes
            assertThrows(IllegalArgumentException.class, () -> k.matmul(WeightType.F32, w.asSlice(2), x, out, 1, 16, 8, 0, 8));
            assertThrows(IllegalArgumentException.class, () -> k.matmul(WeightType.BF16, w.asSlice(1), x, out, 1, 16, 8, 0, 8));
            assertThrows(IllegalArgumentException.class, () -> k.matmul(WeightType.F32, w, x.asSlice(1), out, 1, 16, 8, 0, 8));
            assertThrows(IllegalArgumentException.class, () -> k.matmul(WeightType.F32, w, x, out.asSlice(2), 1, 16, 8, 0, 6));
            assertThrows(IllegalArgumentException.class, () -> k.embed(WeightType.BF16, w.asSlice(1), 0, 16, out));
            assertThrows(IllegalArgumentException.class, () -> k.layerNorm(x.asSlice(1), x, out, 1, 8, 1e-5f));
            assertThrows(IllegalArgumentException.class, () -> k.softmax(out.asSlice(3), 4));
            assertThrows(IllegalArgumentException.class, () -> k.swiglu(out.asSlice(2), x, 0, 4));
        }
    }

    @Test
    void aCheckpointWithTensorsAtOddOffsetsIsRefusedAtLoad(@TempDir Path dir) throws IOException {
        Path src = ModelFixtures.dir("f32-tied");
        Files.copy(src.resolve("config.json"), dir.resolve("config.json"));
        // one more header byte (a space: still the same JSON) moves every tensor to an odd address
        byte[] all = Files.readAllBytes(src.resolve("model.safetensors"));
        long n = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        ByteBuffer b = ByteBuffer.allocate(all.length + 1).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(n + 1).put(all, 8, (int) n).put((byte) ' ').put(all, 8 + (int) n, all.length - 8 - (int) n);
        Files.write(dir.resolve("model.safetensors"), b.array());
        AyaException e = assertThrows(AyaException.class, () -> AyaForward.load(dir, new JavaKernels(), 1).close());
        assertTrue(e.getMessage().contains("not aligned") && !e.getMessage().contains("\n"), e.getMessage());
    }

    @Test
    void aModelRunThroughTheSanitizedLibraryIsCleanAndExact(@TempDir Path tmp) throws Exception {
        Path lib = Path.of("target/native-sanitizers/libaya_kernels.so").toAbsolutePath();
        assumeTrue(Files.isRegularFile(lib), "no ASan build at " + lib + " (made by the pom's test phase)");
        String asan = compilerFile("libasan.so"), ubsan = compilerFile("libubsan.so");
        assumeTrue(asan != null && ubsan != null, "gcc's libasan/libubsan not found");
        String name = "bf16-untied-sharded";
        int[] ids = ModelFixtures.inputIds(name);
        Path npy = tmp.resolve("native.npy");
        String java = ProcessHandle.current().info().command().orElse("java");
        List<String> cmd = new ArrayList<>(List.of(java, "--add-modules", "jdk.incubator.vector",
                "--enable-native-access=ALL-UNNAMED", "-Daya.native.library=" + lib,
                "-cp", System.getProperty("java.class.path"), "aya.cli.Main", "logits",
                "--model", ModelFixtures.dir(name).toAbsolutePath().toString(),
                "--ids", Arrays.stream(ids).mapToObj(Integer::toString).collect(Collectors.joining(",")),
                "--output", npy.toString(), "--backend", "native", "--chunk", "3", "--threads", "2"));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().put("LD_PRELOAD", asan + ":" + ubsan);
        // the JVM uses SIGSEGV itself (implicit null checks, safepoints): ASan must leave that signal alone
        pb.environment().put("ASAN_OPTIONS", "detect_leaks=0:handle_segv=0:allow_user_segv_handler=1:use_sigaltstack=0:abort_on_error=1");
        pb.environment().put("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1");
        Process p = pb.start();
        String output = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(240, TimeUnit.SECONDS), "child finished");
        assertEquals(0, p.exitValue(), output);
        assertFalse(output.contains("AddressSanitizer") || output.contains("runtime error"), output);

        Npy.Matrix got = Npy.read(npy), want = Npy.read(ModelFixtures.dir(name).resolve("logits.npy"));
        assertEquals(want.rows(), got.rows());
        float maxAbs = 0, maxErr = 0;
        for (int i = 0; i < want.data().length; i++) {
            maxAbs = Math.max(maxAbs, Math.abs(want.data()[i]));
            maxErr = Math.max(maxErr, Math.abs(want.data()[i] - got.data()[i]));
        }
        assertTrue(maxErr <= 1e-4 * maxAbs, "max error " + maxErr + " of max |logit| " + maxAbs);
    }

    static String compilerFile(String name) throws IOException, InterruptedException {
        for (String cc : List.of("gcc", "cc", "clang")) {
            try {
                Process p = new ProcessBuilder(cc, "-print-file-name=" + name).redirectErrorStream(true).start();
                String path = new String(p.getInputStream().readAllBytes()).strip();
                if (p.waitFor() == 0 && path.startsWith("/") && Files.exists(Path.of(path))) return path;
            } catch (IOException e) {
                // this compiler is not installed: try the next
            }
        }
        return null;
    }
}
