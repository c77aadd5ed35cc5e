package aya.cli;

import aya.kernels.Backends;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.RandomAccessFile;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * A weight file truncated on disk in the middle of a generation (a page of the mapping vanishes). Before the
 * guard, the native backend died of SIGBUS (hs_err, exit 134) and the Java backend threw the JVM's InternalError
 * (exit 1, stack trace). Now, in a child JVM so a failure cannot take the test JVM down: exit code 2 and one line
 * naming the file, for both backends with the native guard, and for the Java backend without the native library
 * (where the per-step stat check or the JVM's InternalError, mapped back to the file, catch it).
 */
class WeightFileTruncatedMidRunTest {

    @ParameterizedTest
    @ValueSource(strings = {"java", "native", "java-without-native-library"})
    void aShardTruncatedDuringGenerationGivesOneLineAndExitCode2(String mode, @TempDir Path tmp) throws Exception {
        String backend = mode.startsWith("java") ? "java" : "native";
        assumeTrue(Backends.available().contains(backend), backend + " backend not available here");
        Path model = CtrlCTest.longModel(tmp);
        Path weights = model.resolve("model.safetensors");
        List<String> jvm = mode.equals("java-without-native-library")
                ? List.of("-Daya.native.library=" + tmp.resolve("no-such-library.so")) : List.of();
        try (ChildCli child = ChildCli.start(java.util.Map.of(), jvm, "generate", "--model", model.toString(),
                "--backend", backend, "--threads", "1", "--context", Integer.toString(CtrlCTest.CONTEXT),
                "--max-tokens", "-1", "--ignore-eos", "--temperature", "0", "Hello")) {
            child.awaitStdout(s -> s.length() >= 50, 120, "generation under way");
            try (RandomAccessFile f = new RandomAccessFile(weights.toFile(), "rw")) {
                f.setLength(f.length() / 3); // the header stays, most tensors lose their pages
            }
            int code = child.exitCode(60);
            assertTrue(!child.stderr().contains("fatal error") && !child.stderr().contains("InternalError"), child.stderr());
            assertEquals(2, code, child.stderr());
            List<String> lines = child.stderrLines().stream().filter(l -> !l.startsWith("aya: native")).toList();
            assertEquals(1, lines.size(), child.stderr());
            String line = lines.getFirst();
            assertTrue(line.startsWith("aya: " + weights + ": ")
                    && (line.contains("truncated on disk while the model was reading it") || line.contains("changed on disk")), line);
        }
    }
}
