package aya.hub;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Two JVM processes downloading the same model into one cache do not clash: the per-blob file lock (an OS lock,
 * not just a Java monitor) makes one wait for the other, each blob crosses the network once, and both end with the
 * same verified snapshot. The test itself holds a blob's lock first, proving the children wait on the OS lock.
 */
class CrossProcessDownloadTest {

    static byte[] randomBytes(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    @Test
    void twoProcessesShareOneCacheThroughTheFileLock(@TempDir Path cache) throws Exception {
        byte[] shard1 = randomBytes(300_000, 11), shard2 = randomBytes(120_001, 12);
        byte[] index = """
                {"metadata": {}, "weight_map": {"a.weight": "model-00001-of-00002.safetensors",
                                                "b.weight": "model-00002-of-00002.safetensors"}}
                """.getBytes(StandardCharsets.UTF_8);
        try (FakeHub hub = new FakeHub()) {
            hub.repo("Org/Twice")
                    .file("config.json", "{\"model_type\": \"cohere2\"}".getBytes(StandardCharsets.UTF_8))
                    .file("tokenizer.json", "{}".getBytes(StandardCharsets.UTF_8))
                    .file("model.safetensors.index.json", index)
                    .lfsFile("model-00001-of-00002.safetensors", shard1)
                    .lfsFile("model-00002-of-00002.safetensors", shard2);
            RepoCache repoCache = new RepoCache(cache, "Org/Twice");
            Path lockFile = repoCache.lockFile(FakeHub.sha256(shard1));
            Files.createDirectories(lockFile.getParent());

            List<Process> children = new ArrayList<>();
            try (FileChannel channel = FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
                 FileLock held = channel.lock()) {
                for (int i = 0; i < 2; i++) children.add(start(cache, hub));
                // both children reach shard 1 (its HEAD) and must then wait for the lock this process holds
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
                while (heads(hub, "model-00001") < 2) {
                    assertTrue(System.nanoTime() < deadline, () -> "children did not reach shard 1: " + hub.requests("hub"));
                    for (Process p : children) assertTrue(p.isAlive(), () -> "child died early: " + output(p));
                    Thread.sleep(50);
                }
                Thread.sleep(500);
                assertEquals(0, cdnGets(hub, FakeHub.sha256(shard1)), "nobody downloads a blob whose lock is held");
            }
            List<String> snapshots = new ArrayList<>();
            for (Process p : children) {
                assertTrue(p.waitFor(120, TimeUnit.SECONDS), "child finished");
                assertEquals(0, p.exitValue(), () -> output(p));
                snapshots.add(new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip());
            }
            assertEquals(snapshots.get(0), snapshots.get(1));
            Path snapshot = Path.of(snapshots.get(0));
            assertArrayEquals(shard1, Files.readAllBytes(snapshot.resolve("model-00001-of-00002.safetensors")));
            assertArrayEquals(shard2, Files.readAllBytes(snapshot.resolve("model-00002-of-00002.safetensors")));
            assertEquals(1, cdnGets(hub, FakeHub.sha256(shard1)), "shard 1 crossed the network once: " + hub.requests("cdn"));
            assertEquals(1, cdnGets(hub, FakeHub.sha256(shard2)), "shard 2 crossed the network once: " + hub.requests("cdn"));
            try (var left = Files.walk(cache)) {
                assertEquals(0, left.filter(p -> p.toString().endsWith(".incomplete")).count(), "no partial file left");
            }
        }
    }

    static Process start(Path cache, FakeHub hub) throws IOException {
        String java = ProcessHandle.current().info().command().orElse("java");
        return new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"),
                DownloadInAnotherProcess.class.getName(), cache.toString(), hub.endpoint().toString(), "Org/Twice")
                .redirectError(ProcessBuilder.Redirect.PIPE)
                .start();
    }

    static String output(Process p) {
        try {
            return new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            return e.toString();
        }
    }

    static long heads(FakeHub hub, String file) {
        return hub.requests("hub").stream().filter(r -> r.method().equals("HEAD") && r.path().contains(file)).count();
    }

    static long cdnGets(FakeHub hub, String sha256) {
        return hub.requests("cdn").stream().filter(r -> r.method().equals("GET") && r.path().contains(sha256)).count();
    }
}
