package aya.hub;

import aya.AyaException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

class ModelLocatorTest {

    @TempDir
    Path cacheDir;

    private FakeHub hub;
    private final ByteArrayOutputStream logBytes = new ByteArrayOutputStream();

    private static final byte[] CONFIG = "{\"model_type\": \"cohere2\", \"vocab_size\": 8}\n".getBytes(StandardCharsets.UTF_8);
    private static final byte[] GENERATION = "{\"do_sample\": true, \"temperature\": 0.3}\n".getBytes(StandardCharsets.UTF_8);
    private static final byte[] TOKENIZER = "{\"model\": {\"type\": \"BPE\"}}\n".getBytes(StandardCharsets.UTF_8);
    private static final byte[] TOKENIZER_CONFIG = "{\"eos_token\": \"<EOS_TOKEN>\"}\n".getBytes(StandardCharsets.UTF_8);
    private static final byte[] INDEX = """
            {"metadata": {"total_size": 3000},
             "weight_map": {"a.weight": "model-00001-of-00002.safetensors", "b.weight": "model-00002-of-00002.safetensors",
                            "c.weight": "model-00001-of-00002.safetensors"}}
            """.getBytes(StandardCharsets.UTF_8);
    private static final byte[] SHARD1 = randomBytes(200_000, 1);
    private static final byte[] SHARD2 = randomBytes(150_001, 2);

    private static byte[] randomBytes(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    @BeforeEach
    void start() throws IOException {
        hub = new FakeHub();
    }

    @AfterEach
    void stop() {
        hub.close();
    }

    private FakeHub.Repo shardedRepo(String id) {
        return hub.repo(id)
                .file("config.json", CONFIG)
                .file("generation_config.json", GENERATION)
                .file("tokenizer.json", TOKENIZER)
                .file("tokenizer_config.json", TOKENIZER_CONFIG)
                .file("README.md", "# not needed\n".getBytes(StandardCharsets.UTF_8))
                .file("model.safetensors.index.json", INDEX)
                .lfsFile("model-00001-of-00002.safetensors", SHARD1)
                .lfsFile("model-00002-of-00002.safetensors", SHARD2);
    }

    private ModelLocator locator(String token, boolean offline) {
        return locator(new HubSettings(cacheDir, hub.endpoint(), token, cacheDir.resolve("token"), offline));
    }

    private ModelLocator locator(HubSettings settings) {
        return new ModelLocator(settings, new PrintStream(logBytes, true, StandardCharsets.UTF_8), false);
    }

    private Path repoDir(String id) {
        return cacheDir.resolve("models--" + id.replace("/", "--"));
    }

    @Test
    void gitBlobSha1IsGitsObjectId() {
        // `printf 'hello\n' | git hash-object --stdin`
        assertEquals("ce013625030ba8dba906f756967f9e9ca394464a", FakeHub.gitBlobSha1("hello\n".getBytes(StandardCharsets.US_ASCII)));
    }

    @Test
    void freshDownloadLaysOutTheCacheLikeHuggingfaceHub() throws IOException {
        FakeHub.Repo repo = shardedRepo("Org/Model-1.5");
        Path snapshot = locator(null, false).download("Org/Model-1.5", "main");

        Path dir = repoDir("Org/Model-1.5");
        assertEquals(dir.resolve("snapshots").resolve(repo.commit), snapshot);
        assertEquals(repo.commit, Files.readString(dir.resolve("refs/main")), "refs/main holds the bare commit sha");
        assertArrayEquals(CONFIG, Files.readAllBytes(snapshot.resolve("config.json")));
        assertArrayEquals(INDEX, Files.readAllBytes(snapshot.resolve("model.safetensors.index.json")));
        assertArrayEquals(SHARD1, Files.readAllBytes(snapshot.resolve("model-00001-of-00002.safetensors")));
        assertArrayEquals(SHARD2, Files.readAllBytes(snapshot.resolve("model-00002-of-00002.safetensors")));

        // relative links into blobs named by git sha1 (regular files) or sha256 (LFS files)
        assertEquals(Path.of("../../blobs/" + FakeHub.gitBlobSha1(CONFIG)), Files.readSymbolicLink(snapshot.resolve("config.json")));
        assertEquals(Path.of("../../blobs/" + FakeHub.sha256(SHARD1)),
                Files.readSymbolicLink(snapshot.resolve("model-00001-of-00002.safetensors")));
        assertTrue(Files.isRegularFile(dir.resolve("blobs/" + FakeHub.sha256(SHARD2)), java.nio.file.LinkOption.NOFOLLOW_LINKS));

        // files the repo lacks are recorded the way huggingface_hub does; files we do not need are not fetched
        assertTrue(Files.isRegularFile(dir.resolve(".no_exist/" + repo.commit + "/chat_template.jinja")));
        assertFalse(Files.exists(snapshot.resolve("README.md")));
        assertTrue(hub.requests.stream().noneMatch(r -> r.path().contains("README")));
        try (Stream<Path> blobs = Files.list(dir.resolve("blobs"))) {
            assertTrue(blobs.noneMatch(p -> p.toString().endsWith(".incomplete")));
        }
        // files are fetched by commit, so a branch moving during the download cannot mix two versions
        assertTrue(hub.requests("hub").stream().filter(r -> r.path().contains("/resolve/"))
                .allMatch(r -> r.path().contains("/resolve/" + repo.commit + "/")));
        assertTrue(logBytes.toString(StandardCharsets.UTF_8).contains("downloaded model-00001-of-00002.safetensors"));
    }

    @Test
    void aCompleteCacheIsUsedWithoutAnyRequest() {
        shardedRepo("Org/Model");
        Path first = locator(null, false).download("Org/Model", "main");
        int before = hub.requests.size();
        Path again = locator(null, false).resolve("Org/Model");
        assertEquals(first, again);
        assertEquals(before, hub.requests.size(), "resolve of a cached model must not touch the network");
    }

    @Test
    void aSecondDownloadOnlyAsksForTheCommit() {
        shardedRepo("Org/Model");
        locator(null, false).download("Org/Model", "main");
        int before = hub.requests.size();
        locator(null, false).download("Org/Model", "main");
        List<FakeHub.Request> after = hub.requests.subList(before, hub.requests.size());
        assertEquals(1, after.size(), "only the listing: " + after);
        assertTrue(after.get(0).path().startsWith("/api/models/Org/Model/revision/main"));
    }

    @Test
    void aCacheMadeByHuggingfaceHubIsFound() throws IOException {
        // the layout hf_hub_download leaves: refs/main without newline, relative links to blobs
        String commit = "0123456789abcdef0123456789abcdef01234567";
        Path dir = repoDir("CohereLabs/tiny-aya-global");
        Files.createDirectories(dir.resolve("refs"));
        Files.writeString(dir.resolve("refs/main"), commit);
        Path snapshot = dir.resolve("snapshots/" + commit);
        Files.createDirectories(snapshot);
        Files.createDirectories(dir.resolve("blobs"));
        for (var f : List.of(new Object[] {"config.json", CONFIG}, new Object[] {"tokenizer.json", TOKENIZER},
                new Object[] {"model.safetensors", SHARD1})) {
            byte[] content = (byte[]) f[1];
            String etag = f[0].equals("model.safetensors") ? FakeHub.sha256(content) : FakeHub.gitBlobSha1(content);
            Files.write(dir.resolve("blobs/" + etag), content);
            Files.createSymbolicLink(snapshot.resolve((String) f[0]), Path.of("../../blobs/" + etag));
        }
        // no server behind this endpoint: any request would fail
        HubSettings dead = new HubSettings(cacheDir, URI.create("http://127.0.0.1:" + freePort()), null, cacheDir.resolve("token"), false);
        assertEquals(snapshot, locator(dead).resolve("CohereLabs/tiny-aya-global"));
        HubSettings offline = new HubSettings(cacheDir, dead.endpoint(), null, cacheDir.resolve("token"), true);
        assertEquals(snapshot, locator(offline).download("CohereLabs/tiny-aya-global", "main"));
        assertEquals(snapshot, locator(offline).download("CohereLabs/tiny-aya-global", commit));
    }

    @Test
    void aPartialDownloadIsResumedWithARangeRequest() throws IOException {
        FakeHub.Repo repo = shardedRepo("Org/Model");
        String sha = FakeHub.sha256(SHARD1);
        Path incomplete = repoDir("Org/Model").resolve("blobs/" + sha + ".incomplete");
        Files.createDirectories(incomplete.getParent());
        Files.write(incomplete, Arrays.copyOf(SHARD1, 123_456));

        Path snapshot = locator(null, false).download("Org/Model", "main");
        assertArrayEquals(SHARD1, Files.readAllBytes(snapshot.resolve("model-00001-of-00002.safetensors")));
        List<FakeHub.Request> shard1 = hub.requests("cdn").stream().filter(r -> r.path().contains(sha)).toList();
        assertEquals(1, shard1.size());
        assertEquals("bytes=123456-", shard1.get(0).range());
        assertEquals(SHARD1.length - 123_456 + SHARD2.length, hub.cdnBytesSent.get(), "only the missing bytes travel");
        assertFalse(Files.exists(incomplete));
        assertNotNull(repo);
    }

    @Test
    void aDroppedConnectionKeepsThePartForTheNextRun() throws IOException {
        shardedRepo("Org/Model");
        hub.cutCdnOnce = true;
        AyaException e = assertThrows(AyaException.class, () -> locator(null, false).download("Org/Model", "main"));
        assertTrue(e.getMessage().contains("broke off") && e.getMessage().contains("resume"), e.getMessage());
        String sha = FakeHub.sha256(SHARD1);
        Path incomplete = repoDir("Org/Model").resolve("blobs/" + sha + ".incomplete");
        long kept = Files.size(incomplete);
        assertTrue(kept > 0 && kept < SHARD1.length, "kept " + kept);

        Path snapshot = locator(null, false).download("Org/Model", "main");
        assertArrayEquals(SHARD1, Files.readAllBytes(snapshot.resolve("model-00001-of-00002.safetensors")));
        List<FakeHub.Request> shard1 = hub.requests("cdn").stream().filter(r -> r.path().contains(sha)).toList();
        assertEquals("bytes=" + kept + "-", shard1.get(shard1.size() - 1).range());
    }

    @Test
    void aServerThatIgnoresRangeStillGivesTheRightFile() throws IOException {
        shardedRepo("Org/Model");
        hub.ignoreRange = true;
        String sha = FakeHub.sha256(SHARD2);
        Path incomplete = repoDir("Org/Model").resolve("blobs/" + sha + ".incomplete");
        Files.createDirectories(incomplete.getParent());
        Files.write(incomplete, Arrays.copyOf(SHARD2, 1000));
        Path snapshot = locator(null, false).download("Org/Model", "main");
        assertArrayEquals(SHARD2, Files.readAllBytes(snapshot.resolve("model-00002-of-00002.safetensors")));
    }

    @Test
    void aCorruptDownloadNeverEntersTheCache() throws IOException {
        shardedRepo("Org/Model");
        hub.corruptCdn = true;
        AyaException e = assertThrows(AyaException.class, () -> locator(null, false).download("Org/Model", "main"));
        assertTrue(e.getMessage().contains("corrupt") && e.getMessage().contains("sha256"), e.getMessage());
        assertFalse(e.getMessage().contains("\n"));
        Path dir = repoDir("Org/Model");
        try (Stream<Path> blobs = Files.list(dir.resolve("blobs"))) {
            List<String> names = blobs.map(p -> p.getFileName().toString()).toList();
            assertFalse(names.contains(FakeHub.sha256(SHARD1)), names.toString());
            assertTrue(names.stream().noneMatch(n -> n.endsWith(".incomplete")), names.toString());
        }
        assertFalse(Files.exists(dir.resolve("refs/main")), "no ref to an incomplete snapshot");
        hub.corruptCdn = false;
        Path snapshot = locator(null, false).download("Org/Model", "main");
        assertArrayEquals(SHARD1, Files.readAllBytes(snapshot.resolve("model-00001-of-00002.safetensors")));
    }

    @Test
    void aRegularFileWithTheWrongGitShaIsRejected() {
        FakeHub.Repo repo = shardedRepo("Org/Model");
        repo.etagOverride.put("tokenizer.json", "1111111111111111111111111111111111111111");
        AyaException e = assertThrows(AyaException.class, () -> locator(null, false).download("Org/Model", "main"));
        assertTrue(e.getMessage().contains("tokenizer.json") && e.getMessage().contains("git blob sha1"), e.getMessage());
        assertFalse(Files.exists(repoDir("Org/Model").resolve("blobs/1111111111111111111111111111111111111111")));
    }

    @Test
    void offlineModeNeverTouchesTheNetworkAndSaysWhatIsMissing() throws IOException {
        shardedRepo("Org/Model");
        AyaException none = assertThrows(AyaException.class, () -> locator(null, true).resolve("Org/Model"));
        assertTrue(none.getMessage().contains("HF_HUB_OFFLINE") && none.getMessage().contains("not in the cache"), none.getMessage());

        // a partial snapshot: config only
        FakeHub.Repo repo = shardedRepo("Org/Partial");
        Path dir = repoDir("Org/Partial");
        Files.createDirectories(dir.resolve("refs"));
        Files.writeString(dir.resolve("refs/main"), repo.commit);
        Files.createDirectories(dir.resolve("snapshots/" + repo.commit));
        Files.write(dir.resolve("snapshots/" + repo.commit + "/config.json"), CONFIG);
        Files.write(dir.resolve("snapshots/" + repo.commit + "/model.safetensors.index.json"), INDEX);
        AyaException partial = assertThrows(AyaException.class, () -> locator(null, true).download("Org/Partial", "main"));
        assertTrue(partial.getMessage().contains("tokenizer.json")
                && partial.getMessage().contains("model-00001-of-00002.safetensors")
                && partial.getMessage().contains("model-00002-of-00002.safetensors"), partial.getMessage());
        assertEquals(0, hub.requests.size());

        // online, the same partial snapshot is completed
        Path snapshot = locator(null, false).resolve("Org/Partial");
        assertTrue(ModelFiles.missing(snapshot).isEmpty());
    }

    @Test
    void aGatedRepoExplainsWhatToDo() {
        FakeHub.Repo repo = shardedRepo("Org/Gated");
        repo.gatedToken = "hf_right";
        AyaException anonymous = assertThrows(AyaException.class, () -> locator(null, false).download("Org/Gated", "main"));
        String m = anonymous.getMessage();
        assertTrue(m.contains("accept the licence") && m.contains(hub.endpoint() + "/Org/Gated") && m.contains("HF_TOKEN"), m);
        assertFalse(m.contains("\n"));

        AyaException wrong = assertThrows(AyaException.class, () -> locator("hf_wrong", false).download("Org/Gated", "main"));
        assertTrue(wrong.getMessage().contains("refused your token") && wrong.getMessage().contains("accept the licence"), wrong.getMessage());

        Path snapshot = locator("hf_right", false).download("Org/Gated", "main");
        assertTrue(ModelFiles.missing(snapshot).isEmpty());
    }

    @Test
    void theTokenGoesToTheHubButNeverToTheCdn() {
        shardedRepo("Org/Model");
        hub.cdnHop = true; // the CDN redirects once more: still no token there
        locator("hf_secret", false).download("Org/Model", "main");
        assertFalse(hub.requests("hub").isEmpty());
        assertTrue(hub.requests("hub").stream().allMatch(r -> "Bearer hf_secret".equals(r.authorization())));
        assertEquals(4, hub.requests("cdn").size(), "two hops for each shard: " + hub.requests("cdn"));
        assertTrue(hub.requests("cdn").stream().allMatch(r -> r.authorization() == null), hub.requests("cdn").toString());
    }

    @Test
    void missingReposRevisionsAndHostsGiveOneLineErrors() {
        shardedRepo("Org/Model");
        AyaException repo = assertThrows(AyaException.class, () -> locator(null, false).download("Org/Nope", "main"));
        assertTrue(repo.getMessage().contains("Org/Nope") && repo.getMessage().contains("not found"), repo.getMessage());
        AyaException rev = assertThrows(AyaException.class, () -> locator(null, false).download("Org/Model", "v9"));
        assertTrue(rev.getMessage().contains("revision 'v9' not found"), rev.getMessage());

        int port = freePort();
        HubSettings dead = new HubSettings(cacheDir, URI.create("http://127.0.0.1:" + port), null, cacheDir.resolve("token"), false);
        AyaException net = assertThrows(AyaException.class, () -> locator(dead).download("Org/Model", "main"));
        assertTrue(net.getMessage().startsWith("cannot reach 127.0.0.1:" + port), net.getMessage());
        assertFalse(net.getMessage().contains("\n"));
    }

    @Test
    void hostileServerAnswersAreRefused() {
        FakeHub.Repo evil = hub.repo("Org/Evil")
                .file("config.json", CONFIG).file("tokenizer.json", TOKENIZER)
                .file("model.safetensors.index.json", "{\"weight_map\": {\"a\": \"../../../escape.safetensors\"}}".getBytes(StandardCharsets.UTF_8));
        AyaException e = assertThrows(AyaException.class, () -> locator(null, false).download("Org/Evil", "main"));
        assertTrue(e.getMessage().contains("unsafe file"), e.getMessage());
        assertFalse(Files.exists(cacheDir.resolve("escape.safetensors")));

        FakeHub.Repo badEtag = hub.repo("Org/BadEtag").file("config.json", CONFIG).file("tokenizer.json", TOKENIZER)
                .lfsFile("model.safetensors", SHARD2);
        badEtag.etagOverride.put("config.json", "../../../x");
        AyaException etag = assertThrows(AyaException.class, () -> locator(null, false).download("Org/BadEtag", "main"));
        assertTrue(etag.getMessage().contains("no usable ETag"), etag.getMessage());
        assertNotNull(evil);
    }

    @Test
    void aSingleFileModelAndARepoWithoutWeights() throws IOException {
        hub.repo("Org/Single").file("config.json", CONFIG).file("tokenizer.json", TOKENIZER).lfsFile("model.safetensors", SHARD2);
        Path snapshot = locator(null, false).download("Org/Single", "main");
        assertArrayEquals(SHARD2, Files.readAllBytes(snapshot.resolve("model.safetensors")));

        hub.repo("Org/Gguf").file("config.json", CONFIG).file("model.gguf", SHARD1);
        AyaException e = assertThrows(AyaException.class, () -> locator(null, false).download("Org/Gguf", "main"));
        assertTrue(e.getMessage().contains("no safetensors weights"), e.getMessage());
    }

    @Test
    void concurrentDownloadsFetchEachBlobOnce() throws Exception {
        shardedRepo("Org/Model");
        ExecutorService pool = Executors.newFixedThreadPool(3);
        try {
            List<Future<Path>> results = new ArrayList<>();
            for (int i = 0; i < 3; i++) results.add(pool.submit(() -> locator(null, false).download("Org/Model", "main")));
            Path first = results.get(0).get();
            for (Future<Path> f : results) assertEquals(first, f.get());
        } finally {
            pool.shutdownNow();
        }
        assertEquals(2, hub.requests("cdn").size(), "each shard downloaded once: " + hub.requests("cdn"));
    }

    @Test
    void localPathsAreUsedAsIsAndBadArgumentsAreNamed(@TempDir Path local) {
        assertEquals(local, locator(null, false).resolve(local.toString()));
        AyaException missing = assertThrows(AyaException.class, () -> locator(null, false).resolve("./no-such-dir"));
        assertTrue(missing.getMessage().contains("no-such-dir") && missing.getMessage().contains("not found"), missing.getMessage());
        for (String bad : new String[] {"Org/Na me", "Org--x/y", "a/b/c", "../x"}) {
            assertThrows(AyaException.class, () -> locator(null, false).resolve(bad), bad);
        }
        assertThrows(AyaException.class, () -> locator(null, false).download("Org/Model", "../../etc"));
        assertEquals(0, hub.requests.size());
    }

    private static int freePort() {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private static final byte[] GGUF_Q4 = randomBytes(70_001, 7);
    private static final byte[] GGUF_Q8 = randomBytes(90_000, 8);

    private FakeHub.Repo ggufRepo(String id) {
        return hub.repo(id)
                .file("README.md", "# gguf\n".getBytes(StandardCharsets.UTF_8))
                .lfsFile("tiny-aya-global-mmproj-Q4_K_M.gguf", randomBytes(10, 9))
                .lfsFile("tiny-aya-global-Q4_K_M.gguf", GGUF_Q4)
                .lfsFile("tiny-aya-global-q8_0.gguf", GGUF_Q8);
    }

    @Test
    void repoColonQuantPicksThatGgufCaseInsensitivelyAndCachesIt() throws IOException {
        FakeHub.Repo repo = ggufRepo("Org/Model-GGUF");
        Path q4 = locator(null, false).resolve("Org/Model-GGUF:q4_k_m");
        assertEquals(repoDir("Org/Model-GGUF").resolve("snapshots").resolve(repo.commit).resolve("tiny-aya-global-Q4_K_M.gguf"), q4);
        assertArrayEquals(GGUF_Q4, Files.readAllBytes(q4));
        assertEquals(Path.of("../../blobs/" + FakeHub.sha256(GGUF_Q4)), Files.readSymbolicLink(q4), "verified into the cache by sha256");
        assertTrue(hub.requests.stream().noneMatch(r -> r.path().contains("mmproj") || r.path().contains("q8_0")), "only the asked file");
        int before = hub.requests.size();
        assertEquals(q4, locator(null, false).resolve("Org/Model-GGUF:Q4_K_M"));
        assertEquals(before, hub.requests.size(), "a cached GGUF is used without any request");
        assertEquals(q4, locator(null, true).resolve("Org/Model-GGUF:Q4_K_M"), "and offline");
        assertArrayEquals(GGUF_Q8, Files.readAllBytes(locator(null, false).resolve("Org/Model-GGUF:Q8_0")));
    }

    @Test
    void aMissingQuantizationListsTheAvailableOnes() {
        ggufRepo("Org/Model-GGUF");
        AyaException e = assertThrows(AyaException.class, () -> locator(null, false).resolve("Org/Model-GGUF:Q5_K_S"));
        assertEquals("Org/Model-GGUF has no .gguf file for quantization 'Q5_K_S'; available: tiny-aya-global-Q4_K_M.gguf,"
                + " tiny-aya-global-q8_0.gguf", e.getMessage(), "projector files are not models");
        AyaException offline = assertThrows(AyaException.class, () -> locator(null, true).resolve("Org/Model-GGUF:Q5_K_S"));
        assertTrue(offline.getMessage().startsWith("HF_HUB_OFFLINE is set and the cache at "), offline.getMessage());
        AyaException bad = assertThrows(AyaException.class, () -> locator(null, false).resolve("Org/Model-GGUF:Q4 K"));
        assertTrue(bad.getMessage().contains("must be a name like Q4_K_M"), bad.getMessage());
    }
}
