package aya.fuzz;

import aya.AyaException;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * What every fuzz target shares: a scratch directory on tmpfs (one file write per input must be cheap) and the rule
 * that bad input may only end in an {@link AyaException} with a one-line message. Anything else (another
 * exception, an Error such as OutOfMemoryError or StackOverflowError) propagates and Jazzer reports it as a finding.
 */
final class FuzzSupport {

    private FuzzSupport() {}

    /** A fresh directory, on /dev/shm when there is one (fuzzing writes a file per input). */
    static Path scratchDir(String prefix) {
        try {
            Path shm = Path.of("/dev/shm");
            Path dir = Files.isDirectory(shm) && Files.isWritable(shm)
                    ? Files.createTempDirectory(shm, "aya-fuzz-" + prefix)
                    : Files.createTempDirectory("aya-fuzz-" + prefix);
            dir.toFile().deleteOnExit();
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static void deleteTree(Path dir) {
        try (Stream<Path> s = Files.walk(dir)) {
            s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static void write(Path file, byte[] bytes) {
        try {
            Files.write(file, bytes);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Runs {@code parse}; an AyaException is the expected outcome of bad input, but its message must be one clear line. */
    static void onlyUserErrors(Runnable parse) {
        try {
            parse.run();
        } catch (AyaException e) {
            String m = e.getMessage();
            if (m == null || m.isBlank()) {
                throw new AssertionError("AyaException without a message", e);
            }
            if (m.indexOf('\n') >= 0 || m.indexOf('\r') >= 0) {
                throw new AssertionError("AyaException message is not one line: " + m, e);
            }
        }
    }

    /** Swallows what the CLI prints, so a campaign does not flood the log (restored by the returned handle). */
    static AutoCloseable silenceStdStreams() {
        PrintStream out = System.out, err = System.err;
        PrintStream sink = new PrintStream(OutputStream.nullOutputStream());
        System.setOut(sink);
        System.setErr(sink);
        return () -> {
            System.setOut(out);
            System.setErr(err);
        };
    }
}
