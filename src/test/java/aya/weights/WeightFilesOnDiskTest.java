package aya.weights;

import aya.AyaException;
import aya.kernels.JavaKernels;
import aya.model.AyaForward;
import aya.model.ModelFixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Weight files that are truncated or changed on disk: caught at load for every shard (sizes checked against the
 * header), and caught before a new session when a mapped file shrinks or is rewritten after load.
 */
class WeightFilesOnDiskTest {

    static Path copyOf(String fixture, Path to) throws IOException {
        try (Stream<Path> files = Files.list(ModelFixtures.dir(fixture))) {
            for (Path f : (Iterable<Path>) files::iterator) Files.copy(f, to.resolve(f.getFileName()));
        }
        return to;
    }

    static List<Path> shards(Path dir) throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            return files.filter(p -> p.getFileName().toString().endsWith(".safetensors")).sorted().toList();
        }
    }

    static void truncate(Path file, long newSize) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.setLength(newSize);
        }
    }

    static AyaException loadFails(Path dir) {
        AyaException e = assertThrows(AyaException.class, () -> AyaForward.load(dir, new JavaKernels(), 1).close());
        assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
        return e;
    }

    @Test
    void everyShardCutByOneByteOrByHalfIsNamedAtLoad(@TempDir Path tmp) throws IOException {
        Path clean = copyOf("bf16-untied-sharded", Files.createDirectory(tmp.resolve("clean")));
        List<Path> shards = shards(clean);
        assertEquals(10, shards.size());
        for (Path shard : shards) {
            long size = Files.size(shard);
            for (long cut : new long[] {size - 1, size / 2, 9, 0}) {
                Path dir = Files.createTempDirectory(tmp, "cut");
                copyOf("bf16-untied-sharded", dir);
                Path broken = dir.resolve(shard.getFileName());
                truncate(broken, cut);
                AyaException e = loadFails(dir);
                assertTrue(e.getMessage().contains(shard.getFileName().toString()), cut + " bytes: " + e.getMessage());
                assertTrue(e.getMessage().contains("truncated") || e.getMessage().contains("header")
                        || e.getMessage().contains("past the data section"), e.getMessage());
            }
        }
        AyaForward.load(clean, new JavaKernels(), 1).close(); // the untouched copy still loads
    }

    @Test
    void theSingleFileCheckpointCutAnywhereIsNamedAtLoad(@TempDir Path tmp) throws IOException {
        Path src = ModelFixtures.dir("f32-tied").resolve("model.safetensors");
        long size = Files.size(src);
        for (long cut : new long[] {size - 1, size - 4096, size / 3, 100, 8, 3}) {
            Path dir = Files.createTempDirectory(tmp, "cut");
            copyOf("f32-tied", dir);
            truncate(dir.resolve("model.safetensors"), cut);
            assertTrue(loadFails(dir).getMessage().contains("model.safetensors"));
        }
    }

    @Test
    void aFileGrownOrWithAnEditedHeaderIsStillChecked(@TempDir Path tmp) throws IOException {
        Path dir = copyOf("f32-tied", tmp);
        Path file = dir.resolve("model.safetensors");
        // a longer data section is allowed by the format (padding); the tensors still map inside it
        Files.write(file, new byte[64], java.nio.file.StandardOpenOption.APPEND);
        AyaForward.load(dir, new JavaKernels(), 1).close();
        // an edited shape no longer matches its byte range
        SafetensorsTest.rewriteHeader(file, "\"shape\":[320,72]", "\"shape\":[321,72]");
        assertTrue(loadFails(dir).getMessage().contains("model.embed_tokens.weight"));
    }

    @Test
    void aShardTruncatedAfterLoadIsCaughtBeforeTheNextSession(@TempDir Path tmp) throws IOException {
        Path dir = copyOf("bf16-untied-sharded", tmp);
        try (AyaForward model = AyaForward.load(dir, new JavaKernels(), 1)) {
            try (AyaForward.State s = model.newState(8)) {
                model.forward(s, new int[] {1, 2, 3});
            }
            Path shard = shards(dir).get(4);
            truncate(shard, Files.size(shard) / 2); // reading the lost pages now would raise SIGBUS
            AyaException e = assertThrows(AyaException.class, () -> model.newState(8));
            assertTrue(e.getMessage().contains(shard.getFileName().toString()) && e.getMessage().contains("changed on disk"),
                    e.getMessage());
        }
    }

    @Test
    void aFileRewrittenInPlaceIsCaughtButOneReplacedByRenameIsSafe(@TempDir Path tmp) throws IOException {
        Path dir = copyOf("f32-tied", tmp);
        Path file = dir.resolve("model.safetensors");
        try (AyaForward model = AyaForward.load(dir, new JavaKernels(), 1)) {
            // replaced by rename (what a download does): the mapping keeps the old inode, nothing can fault
            Path fresh = tmp.resolve("fresh.tmp");
            Files.copy(ModelFixtures.dir("f32-tied").resolve("model.safetensors"), fresh);
            Files.move(fresh, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            model.newState(8).close();
        }
        try (AyaForward model = AyaForward.load(dir, new JavaKernels(), 1)) {
            // same size, rewritten in place (new modification time): the mapped bytes changed under us
            Files.setLastModifiedTime(file, FileTime.fromMillis(Files.getLastModifiedTime(file).toMillis() + 60_000));
            AyaException e = assertThrows(AyaException.class, () -> model.newState(8));
            assertTrue(e.getMessage().contains("changed on disk"), e.getMessage());
        }
    }
}
