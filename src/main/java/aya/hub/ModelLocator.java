package aya.hub;

import aya.AyaException;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.HttpURLConnection;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;

/**
 * Turns a {@code --model} argument into a directory holding config.json, the tokenizer and the safetensors weights.
 * <ul>
 *   <li>an existing path is used as is;</li>
 *   <li>otherwise it is a repo id (Org/Name): the snapshot of its {@code main} branch in the hub cache is used when it
 *       is complete, without touching the network; else the missing files are downloaded (unless HF_HUB_OFFLINE).</li>
 * </ul>
 * {@link #download} always asks the hub which commit the revision points to now, then fetches only what the cache
 * lacks. Downloads go to {@code blobs/{etag}.incomplete} (resumed with a Range request after an interruption),
 * are checked against their size and etag (sha256 for LFS files, git blob sha1 for the others), moved atomically
 * into blobs/, then linked from the snapshot; the ref is written last.
 */
public final class ModelLocator {

    private static final Pattern SHA256 = Pattern.compile("[0-9a-f]{64}");
    private static final Pattern SHA1 = Pattern.compile("[0-9a-f]{40}");
    private static final int BUFFER = 1 << 20;

    /** One monitor per lock file: FileChannel locks are per process, threads of this JVM need their own. */
    private static final ConcurrentHashMap<Path, Object> IN_PROCESS_LOCKS = new ConcurrentHashMap<>();

    private final HubSettings settings;
    private final HubClient client;
    private final PrintStream log;       // progress and notes, null = silent
    private final boolean terminal;

    public ModelLocator(HubSettings settings, PrintStream log, boolean terminal) {
        this.settings = settings;
        this.client = new HubClient(settings);
        this.log = log;
        this.terminal = terminal;
    }

    /** Settings from the environment, progress on stderr. */
    public static ModelLocator fromEnvironment() {
        return new ModelLocator(HubSettings.fromEnvironment(), System.err, DownloadProgress.stderrIsTerminal());
    }

    public HubSettings settings() {
        return settings;
    }

    /** A local path as is, else the cached (or freshly downloaded) snapshot of the repo's main branch. */
    public Path resolve(String modelArg) {
        if (modelArg == null || modelArg.isBlank()) throw new AyaException("no model given: pass a directory or a repo id like CohereLabs/tiny-aya-global");
        try {
            Path local = Path.of(modelArg);
            if (Files.exists(local)) return local;
        } catch (InvalidPathException ignored) {
            // not a path on this system: maybe a repo id
        }
        int colon = modelArg.indexOf(':');
        if (colon > 0 && modelArg.indexOf('/') > 0 && modelArg.indexOf('/') < colon && !modelArg.startsWith("/") && !modelArg.startsWith(".")) {
            return resolveGguf(modelArg.substring(0, colon), modelArg.substring(colon + 1));
        }
        boolean pathLike = modelArg.startsWith("/") || modelArg.startsWith(".") || modelArg.startsWith("~")
                || modelArg.indexOf('/') < 0 || modelArg.indexOf('/') != modelArg.lastIndexOf('/');
        if (pathLike) throw new AyaException("model '" + modelArg + "' not found: no such directory, and not a repo id like CohereLabs/tiny-aya-global");
        RepoCache.checkRepoId(modelArg);
        RepoCache cache = new RepoCache(settings.cacheDir(), modelArg);
        Optional<Path> cached = completeSnapshot(cache, "main");
        if (cached.isPresent()) return cached.get();
        return download(modelArg, "main");
    }

    private static final Pattern QUANT = Pattern.compile("[A-Za-z0-9_]{1,32}");

    /**
     * {@code repo:QUANT} (llama.cpp's {@code -hf repo:quant}): the repo's one {@code .gguf} file whose name carries the
     * quantization (case-insensitive, followed by '.' or '-', as llama.cpp matches it), from the cache when the cached
     * snapshot of main has it, else downloaded and verified into the cache like any other file.
     */
    public Path resolveGguf(String repoId, String quant) {
        RepoCache.checkRepoId(repoId);
        if (!QUANT.matcher(quant).matches()) {
            throw new AyaException("'" + repoId + ":" + quant + "': the quantization after ':' must be a name like Q4_K_M");
        }
        RepoCache cache = new RepoCache(settings.cacheDir(), repoId);
        Optional<String> cachedCommit = cache.commitOf("main");
        if (cachedCommit.isPresent()) {
            Path snapshot = cache.snapshot(cachedCommit.get());
            List<String> local = new ArrayList<>();
            if (Files.isDirectory(snapshot)) {
                try (var files = Files.list(snapshot)) {
                    files.map(f -> f.getFileName().toString()).sorted().forEach(local::add);
                } catch (IOException e) {
                    throw new AyaException("cannot list the hub cache at " + snapshot + ": " + ModelFiles.oneLine(e));
                }
            }
            String found = ggufFileFor(local, quant);
            if (found != null && Files.isRegularFile(snapshot.resolve(found))) return snapshot.resolve(found);
        }
        if (settings.offline()) {
            throw new AyaException("HF_HUB_OFFLINE is set and the cache at " + cache.dir() + " has no " + quant + " .gguf of " + repoId
                    + "; unset HF_HUB_OFFLINE (or run ./aya download " + repoId + ":" + quant + " where the network is on)");
        }
        HubClient.RepoInfo info = client.listRepo(repoId, "main");
        String file = ggufFileFor(info.files(), quant);
        if (file == null) {
            List<String> available = info.files().stream().filter(ModelLocator::isModelGguf).sorted().toList();
            throw new AyaException(repoId + " has no .gguf file for quantization '" + quant + "'; "
                    + (available.isEmpty() ? "it has no .gguf files" : "available: " + String.join(", ", available)));
        }
        note("aya: " + repoId + " main = commit " + info.commit() + ", " + file + ", cache " + cache.dir());
        try {
            ensure(cache, info.commit(), file);
            cache.writeRef("main", info.commit());
        } catch (IOException e) {
            throw new AyaException("cannot write the hub cache at " + cache.dir() + ": " + ModelFiles.oneLine(e), e);
        }
        return cache.snapshot(info.commit()).resolve(file);
    }

    /** The first model .gguf among {@code files} whose name holds {@code quant} followed by '.' or '-' (any case), or null. */
    static String ggufFileFor(List<String> files, String quant) {
        Pattern p = Pattern.compile(Pattern.quote(quant) + "[.-]", Pattern.CASE_INSENSITIVE);
        for (String f : files) {
            if (isModelGguf(f) && p.matcher(f).find()) return f;
        }
        return null;
    }

    /** A .gguf at the top of the repo that is a model, not a projector or an importance matrix (as llama.cpp tells them). */
    static boolean isModelGguf(String file) {
        String lower = file.toLowerCase(java.util.Locale.ROOT);
        return lower.endsWith(".gguf") && file.indexOf('/') < 0 && !lower.contains("mmproj") && !lower.contains("imatrix");
    }

    /** The snapshot of a revision if the cache holds everything needed to run it. */
    public Optional<Path> completeSnapshot(RepoCache cache, String revision) {
        Optional<String> commit = cache.commitOf(revision);
        if (commit.isEmpty()) return Optional.empty();
        Path snapshot = cache.snapshot(commit.get());
        try {
            return Files.isDirectory(snapshot) && ModelFiles.missing(snapshot).isEmpty() ? Optional.of(snapshot) : Optional.empty();
        } catch (AyaException e) {
            return Optional.empty(); // e.g. a broken index: a download will replace it
        }
    }

    /** Fetches what the cache lacks of {@code repoId} at {@code revision} and returns the snapshot directory. */
    public Path download(String repoId, String revision) {
        RepoCache.checkRepoId(repoId);
        RepoCache.checkRevision(revision);
        RepoCache cache = new RepoCache(settings.cacheDir(), repoId);
        if (settings.offline()) return offlineSnapshot(cache, revision);

        HubClient.RepoInfo info = client.listRepo(repoId, revision);
        String commit = info.commit();
        Set<String> remote = new HashSet<>(info.files());
        if (!remote.contains(ModelFiles.CONFIG)) throw new AyaException(repoId + " has no config.json at revision " + revision + ": not a transformers model");
        String weights = remote.contains(ModelFiles.WEIGHTS_INDEX) ? ModelFiles.WEIGHTS_INDEX
                : remote.contains(ModelFiles.WEIGHTS) ? ModelFiles.WEIGHTS : null;
        if (weights == null) {
            throw new AyaException(repoId + " has no safetensors weights (" + ModelFiles.WEIGHTS + " or " + ModelFiles.WEIGHTS_INDEX + ") at revision " + revision);
        }
        note("aya: " + repoId + " " + revision + (revision.equals(commit) ? "" : " = commit " + commit) + ", cache " + cache.dir());

        try {
            List<String> absent = new ArrayList<>();
            for (String file : ModelFiles.SMALL_FILES) {
                if (remote.contains(file)) ensure(cache, commit, file);
                else absent.add(file);
            }
            ensure(cache, commit, weights);
            if (weights.equals(ModelFiles.WEIGHTS_INDEX)) {
                for (String shard : ModelFiles.shardsOf(cache.snapshot(commit).resolve(weights))) {
                    if (!remote.contains(shard)) throw new AyaException(repoId + ": " + weights + " names " + shard + ", which the repo does not have");
                    ensure(cache, commit, shard);
                }
            }
            for (String file : absent) cache.markMissing(commit, file);
            cache.writeRef(revision, commit);
        } catch (IOException e) {
            throw new AyaException("cannot write the hub cache at " + cache.dir() + ": " + ModelFiles.oneLine(e), e);
        }
        Path snapshot = cache.snapshot(commit);
        List<String> missing = ModelFiles.missing(snapshot);
        if (!missing.isEmpty()) throw new AyaException(repoId + ": after download the snapshot still lacks " + String.join(", ", missing));
        return snapshot;
    }

    private Path offlineSnapshot(RepoCache cache, String revision) {
        Optional<String> commit = cache.commitOf(revision);
        String hint = "; unset HF_HUB_OFFLINE (or run ./aya download " + cache.repoId() + " where the network is on)";
        if (commit.isEmpty()) {
            throw new AyaException("HF_HUB_OFFLINE is set and " + cache.repoId() + " (revision " + revision
                    + ") is not in the cache at " + cache.dir() + hint);
        }
        Path snapshot = cache.snapshot(commit.get());
        List<String> missing = Files.isDirectory(snapshot) ? ModelFiles.missing(snapshot) : List.of("everything");
        if (!missing.isEmpty()) {
            throw new AyaException("HF_HUB_OFFLINE is set and the cached snapshot " + snapshot + " lacks "
                    + String.join(", ", missing) + hint);
        }
        return snapshot;
    }

    /** Makes snapshots/{commit}/{file} exist: nothing to do if it does, a link if the blob is there, else a download. */
    private void ensure(RepoCache cache, String commit, String file) throws IOException {
        ModelFiles.checkName(file, cache.repoId());
        if (Files.isRegularFile(cache.snapshot(commit).resolve(file))) return;
        HubClient.FileInfo meta = client.head(cache.repoId(), commit, file);
        if (!Files.isRegularFile(cache.blob(meta.etag()))) fetchBlob(cache, commit, file, meta);
        cache.link(commit, file, meta.etag());
    }

    private void fetchBlob(RepoCache cache, String commit, String file, HubClient.FileInfo meta) throws IOException {
        Path lockFile = cache.lockFile(meta.etag());
        Files.createDirectories(lockFile.getParent());
        Files.createDirectories(cache.blob(meta.etag()).getParent());
        synchronized (IN_PROCESS_LOCKS.computeIfAbsent(lockFile.toAbsolutePath(), p -> new Object())) {
            try (FileChannel channel = FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
                 FileLock ignored = channel.lock()) {
                if (Files.isRegularFile(cache.blob(meta.etag()))) return; // another process finished it meanwhile
                downloadToIncomplete(cache, commit, file, meta, true);
                RepoCache.move(cache.incomplete(meta.etag()), cache.blob(meta.etag()));
            }
        }
    }

    /** Streams the file into blobs/{etag}.incomplete, resuming what is there, and verifies it. */
    private void downloadToIncomplete(RepoCache cache, String commit, String file, HubClient.FileInfo meta,
                                      boolean mayRestart) throws IOException {
        Path part = cache.incomplete(meta.etag());
        long have = Files.isRegularFile(part) ? Files.size(part) : 0;
        if (meta.size() >= 0 && have > meta.size()) {
            Files.delete(part);
            have = 0;
        }
        MessageDigest sha256 = SHA256.matcher(meta.etag()).matches() ? digest("SHA-256") : null;
        HttpURLConnection c = client.get(meta.location(), have, cache.repoId(), commit, file);
        try {
            int code = c.getResponseCode();
            if (code == 416) { // nothing after `have`: either complete already or a stale partial file
                c.disconnect();
                if (have == meta.size() && have > 0) {
                    verify(part, meta, file, sha256 == null ? null : hashOf(part, sha256));
                    return;
                }
                Files.deleteIfExists(part);
                if (mayRestart) {
                    downloadToIncomplete(cache, commit, file, meta, false);
                    return;
                }
                throw new AyaException(c.getURL().getHost() + " refused to send " + file + " (HTTP 416)");
            }
            boolean append = code == 206 && have > 0 && rangeStart(c.getHeaderField("Content-Range")) == have;
            if (!append) have = 0; // 200 (the server ignored Range) or an unexpected range: start over
            if (sha256 != null && append) hashOf(part, sha256);

            DownloadProgress progress = new DownloadProgress(log, terminal, file, meta.size(), have);
            StandardOpenOption mode = append ? StandardOpenOption.APPEND : StandardOpenOption.TRUNCATE_EXISTING;
            try (InputStream in = c.getInputStream();
                 OutputStream out = Files.newOutputStream(part, StandardOpenOption.CREATE, StandardOpenOption.WRITE, mode)) {
                byte[] buffer = new byte[BUFFER];
                for (int n; (n = in.read(buffer)) > 0; ) {
                    out.write(buffer, 0, n);
                    if (sha256 != null) sha256.update(buffer, 0, n);
                    progress.advance(n);
                }
            } catch (IOException e) {
                long got = Files.isRegularFile(part) ? Files.size(part) : 0;
                throw new AyaException("download of " + file + " from " + c.getURL().getHost() + " broke off at "
                        + DownloadProgress.bytes(got) + " (" + ModelFiles.oneLine(e) + "): run the command again to resume", e);
            }
            verify(part, meta, file, sha256 == null ? null : HexFormat.of().formatHex(sha256.digest()));
            progress.finish();
        } finally {
            c.disconnect();
        }
    }

    /** Size, then content hash against the etag; a wrong file is deleted so nothing corrupt reaches blobs/. */
    private void verify(Path part, HubClient.FileInfo meta, String file, String sha256Hex) throws IOException {
        long size = Files.size(part);
        if (meta.size() >= 0 && size < meta.size()) {
            throw new AyaException("download of " + file + " stopped at " + DownloadProgress.bytes(size) + " of "
                    + DownloadProgress.bytes(meta.size()) + ": run the command again to resume");
        }
        String expected = meta.etag();
        String actual = null;
        String kind = null;
        if (sha256Hex != null) {
            actual = sha256Hex;
            kind = "sha256";
        } else if (SHA1.matcher(expected).matches()) {
            actual = gitBlobSha1(part);
            kind = "git blob sha1";
        }
        boolean sizeWrong = meta.size() >= 0 && size != meta.size();
        if (sizeWrong || (actual != null && !actual.equals(expected))) {
            Files.deleteIfExists(part);
            throw new AyaException("downloaded " + file + " is corrupt (" + (sizeWrong
                    ? "size " + size + ", expected " + meta.size()
                    : kind + " " + actual + ", expected " + expected) + "); it was deleted: run the command again");
        }
    }

    private static String gitBlobSha1(Path file) throws IOException {
        MessageDigest sha1 = digest("SHA-1");
        sha1.update(("blob " + Files.size(file) + "\0").getBytes(StandardCharsets.US_ASCII));
        return hashOf(file, sha1);
    }

    private static String hashOf(Path file, MessageDigest digest) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            byte[] buffer = new byte[BUFFER];
            for (int n; (n = in.read(buffer)) > 0; ) digest.update(buffer, 0, n);
        }
        // a clone keeps the running state for callers that continue hashing (resume)
        try {
            return HexFormat.of().formatHex(((MessageDigest) digest.clone()).digest());
        } catch (CloneNotSupportedException e) {
            throw new IllegalStateException(e);
        }
    }

    private static long rangeStart(String contentRange) {
        // "bytes 100-999/1000"
        if (contentRange == null || !contentRange.startsWith("bytes ")) return -1;
        int dash = contentRange.indexOf('-');
        try {
            return dash < 0 ? -1 : Long.parseLong(contentRange.substring(6, dash).strip());
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    private static MessageDigest digest(String algorithm) {
        try {
            return MessageDigest.getInstance(algorithm);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private void note(String line) {
        if (log != null) log.println(line);
    }
}
