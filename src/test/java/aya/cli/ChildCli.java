package aya.cli;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code java ... aya.cli.Main ARGS} in a child JVM, as {@code ./aya} starts it, with its stdout and stderr read
 * as they come: for tests that send real signals (or crash the process on purpose) without touching the test JVM.
 */
public final class ChildCli implements AutoCloseable {

    public final Process process;
    private final Output out, err;

    private ChildCli(Process process) {
        this.process = process;
        this.out = new Output(process.getInputStream());
        this.err = new Output(process.getErrorStream());
    }

    public static ChildCli start(Map<String, String> env, List<String> jvmOptions, String... args) throws IOException {
        String java = ProcessHandle.current().info().command().orElse("java");
        List<String> cmd = new ArrayList<>(List.of(java, "--add-modules", "jdk.incubator.vector",
                "--enable-native-access=ALL-UNNAMED", "-XX:+UseParallelGC", "-Xss4m"));
        cmd.addAll(jvmOptions);
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), Main.class.getName()));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().putAll(env);
        return new ChildCli(pb.start());
    }

    public static ChildCli start(String... args) throws IOException {
        return start(Map.of(), List.of(), args);
    }

    /** {@code kill -INT pid}: what Ctrl-C in a terminal sends. */
    public void sigint() throws IOException, InterruptedException {
        Process kill = new ProcessBuilder("kill", "-INT", Long.toString(process.pid())).inheritIO().start();
        assertTrue(kill.waitFor(10, TimeUnit.SECONDS) && kill.exitValue() == 0, "kill -INT " + process.pid());
    }

    public String stdout() {
        return out.text();
    }

    public String stderr() {
        return err.text();
    }

    /** Waits until stdout satisfies {@code condition}; fails (with the child's stderr) after {@code seconds}. */
    public void awaitStdout(Predicate<String> condition, int seconds, String what) throws InterruptedException {
        await(() -> condition.test(stdout()), seconds, what);
    }

    public void awaitStderr(Predicate<String> condition, int seconds, String what) throws InterruptedException {
        await(() -> condition.test(stderr()), seconds, what);
    }

    public void await(java.util.function.BooleanSupplier condition, int seconds, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (!condition.getAsBoolean()) {
            assertTrue(process.isAlive() || condition.getAsBoolean(),
                    () -> "child exited (" + process.exitValue() + ") before: " + what + "; stderr: " + stderr());
            assertTrue(System.nanoTime() < deadline, () -> "timed out waiting for: " + what + "; stderr: " + stderr());
            Thread.sleep(20);
        }
    }

    /** Waits for the exit and returns the exit code (after all output is read). */
    public int exitCode(int seconds) throws InterruptedException {
        assertTrue(process.waitFor(seconds, TimeUnit.SECONDS), () -> "child still running after " + seconds + " s; stderr: " + stderr());
        out.join();
        err.join();
        return process.exitValue();
    }

    /** stderr without the JVM's own startup warning (incubator module) and the load report. */
    public List<String> stderrLines() {
        return stderr().lines().filter(l -> !l.startsWith("WARNING: Using incubator modules")
                && !l.startsWith("aya: loaded ")).toList();
    }

    @Override
    public void close() {
        process.destroyForcibly();
    }

    /** Reads one stream on its own thread into memory. */
    private static final class Output {
        private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        private final Thread reader;

        Output(InputStream in) {
            reader = Thread.ofPlatform().daemon().start(() -> {
                byte[] buffer = new byte[8192];
                try (in) {
                    for (int n; (n = in.read(buffer)) > 0; ) {
                        synchronized (bytes) {
                            bytes.write(buffer, 0, n);
                        }
                    }
                } catch (IOException ignored) {
                    // the process ended
                }
            });
        }

        String text() {
            synchronized (bytes) {
                return bytes.toString(StandardCharsets.UTF_8);
            }
        }

        void join() throws InterruptedException {
            reader.join(TimeUnit.SECONDS.toMillis(10));
        }
    }
}
