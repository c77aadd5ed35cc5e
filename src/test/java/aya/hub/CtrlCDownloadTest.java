package aya.hub;

import aya.cli.ChildCli;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.OutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Ctrl-C during {@code ./aya download} (a real SIGINT to a child JVM): exit code 130 and one line, the partial
 * blobs/*.incomplete file kept with what arrived, the blob's lock released, and the next run resumes with a Range
 * request from where it stopped (so the bytes before it cross the network once).
 */
class CtrlCDownloadTest {

    @Test
    void anInterruptedDownloadKeepsItsPartAndTheNextRunResumes(@TempDir Path tmp) throws Exception {
        byte[] shard = new byte[1 << 20];
        new Random(7).nextBytes(shard);
        Path cache = tmp.resolve("hub");
        try (FakeHub hub = new FakeHub()) {
            hub.repo("Org/Slow")
                    .file("config.json", "{\"model_type\": \"cohere2\"}".getBytes(StandardCharsets.UTF_8))
                    .file("tokenizer.json", "{}".getBytes(StandardCharsets.UTF_8))
                    .lfsFile("model.safetensors", shard);
            String sha = FakeHub.sha256(shard);
            RepoCache repoCache = new RepoCache(cache, "Org/Slow");
            Path part = repoCache.incomplete(sha);
            hub.stallCdn = true;
            try (ChildCli child = ChildCli.start(Map.of("HF_HUB_CACHE", cache.toString(),
                    "HF_ENDPOINT", hub.endpoint().toString(), "HF_HOME", tmp.resolve("home").toString(), "HF_TOKEN", ""), List.of(), "download", "Org/Slow")) {
                child.await(() -> size(part) == shard.length / 2, 60, "half of the shard in " + part);
                child.sigint();
                assertEquals(130, child.exitCode(30), child.stderr());
                assertEquals("aya: interrupted", child.stderr().strip().lines().toList().getLast(), child.stderr());
                assertEquals("", child.stdout(), "no snapshot printed");
            } finally {
                hub.stallCdn = false;
            }
            assertEquals(shard.length / 2, size(part), "the partial file is kept as it was");
            assertTrue(!Files.exists(repoCache.blob(sha)), "nothing entered blobs/");
            try (FileChannel channel = FileChannel.open(repoCache.lockFile(sha), StandardOpenOption.WRITE);
                 FileLock lock = channel.tryLock()) {
                assertNotNull(lock, "the interrupted process released the blob's lock");
            }

            HubSettings settings = new HubSettings(cache, URI.create(hub.endpoint().toString()), null, cache.resolve("token"), false);
            Path snapshot = new ModelLocator(settings, new PrintStream(OutputStream.nullOutputStream()), false)
                    .download("Org/Slow", "main");
            assertArrayEquals(shard, Files.readAllBytes(snapshot.resolve("model.safetensors")));
            List<FakeHub.Request> gets = hub.requests("cdn").stream().filter(r -> r.method().equals("GET")).toList();
            assertEquals(2, gets.size(), gets.toString());
            assertEquals("bytes=" + shard.length / 2 + "-", gets.get(1).range(), "the second run resumes: " + gets);
            assertEquals(shard.length, hub.cdnBytesSent.get(), "each byte crossed the network once");
            assertTrue(!Files.exists(part), "the part became the blob");
        }
    }

    private static long size(Path p) {
        return p.toFile().length();
    }
}
