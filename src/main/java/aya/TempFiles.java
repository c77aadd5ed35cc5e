package aya;

import java.io.IOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashSet;
import java.util.Set;
import java.util.UUID;

/**
 * Temp files written next to their target and then renamed into place (so a reader never sees half a file). The
 * ones still being written when the JVM exits (Ctrl-C, System.exit) are deleted by a shutdown hook, so an
 * interrupted command leaves neither a half-written output nor a stray temp file. Creating, renaming and the hook
 * share one lock: once the hook has run, no temp file can appear and no rename can happen.
 * (A SIGKILL or a power cut runs no hook: a hidden ".{name}.{uuid}.tmp" may then remain, never a half target.)
 */
public final class TempFiles {

    private static final Set<Path> IN_PROGRESS = new LinkedHashSet<>();
    private static boolean exiting;

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(TempFiles::deleteAll, "aya-temp-files"));
    }

    private TempFiles() {
    }

    /** A new empty hidden temp file next to {@code target}: ".{name}.{uuid}.tmp". */
    public static Path create(Path target) throws IOException {
        Path temp = target.resolveSibling("." + target.getFileName() + "." + UUID.randomUUID() + ".tmp");
        synchronized (IN_PROGRESS) {
            if (exiting) throw new IOException("the program is exiting");
            Files.createFile(temp);
            IN_PROGRESS.add(temp);
        }
        return temp;
    }

    /** Registers a temp file created some other way (e.g. a symbolic link) by {@code creator}, under the lock. */
    public static Path create(Path target, IoAction<Path> creator) throws IOException {
        Path temp = target.resolveSibling("." + target.getFileName() + "." + UUID.randomUUID() + ".tmp");
        synchronized (IN_PROGRESS) {
            if (exiting) throw new IOException("the program is exiting");
            creator.run(temp);
            IN_PROGRESS.add(temp);
        }
        return temp;
    }

    /** Renames {@code temp} over {@code target} (atomically where the file system can). */
    public static void commit(Path temp, Path target) throws IOException {
        synchronized (IN_PROGRESS) {
            if (exiting) throw new IOException("the program is exiting");
            try {
                Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(temp, target, StandardCopyOption.REPLACE_EXISTING);
            }
            IN_PROGRESS.remove(temp);
        }
    }

    /** Deletes an abandoned temp file (best effort: it is hidden and named after its target). */
    public static void delete(Path temp) {
        synchronized (IN_PROGRESS) {
            IN_PROGRESS.remove(temp);
            deleteQuietly(temp);
        }
    }

    /** Temp files not yet committed or deleted (for tests). */
    public static int inProgress() {
        synchronized (IN_PROGRESS) {
            return IN_PROGRESS.size();
        }
    }

    private static void deleteAll() {
        synchronized (IN_PROGRESS) {
            exiting = true;
            IN_PROGRESS.forEach(TempFiles::deleteQuietly);
            IN_PROGRESS.clear();
        }
    }

    private static void deleteQuietly(Path p) {
        try {
            Files.deleteIfExists(p);
        } catch (IOException ignored) {
            // best effort
        }
    }

    /** An I/O step on a path. */
    @FunctionalInterface
    public interface IoAction<T> {
        void run(T value) throws IOException;
    }
}
