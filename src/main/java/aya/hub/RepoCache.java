package aya.hub;

import aya.AyaException;
import aya.TempFiles;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * One model repo in the hub cache, laid out exactly as huggingface_hub lays it out, so either tool finds the
 * other's downloads:
 * <pre>
 *   {cache}/models--Org--Name/
 *       blobs/{etag}                      file contents; etag = sha256 (LFS files) or git blob sha1 (others)
 *       blobs/{etag}.incomplete           a download in progress (resumed with a Range request)
 *       refs/{revision}                   the commit sha the revision (branch or tag) pointed to, no newline
 *       snapshots/{commit}/{file}         relative symlink to ../../blobs/{etag}
 *       .no_exist/{commit}/{file}         empty: the file does not exist at that commit
 *   {cache}/.locks/models--Org--Name/{etag}.lock
 * </pre>
 */
public final class RepoCache {

    private static final Pattern REPO_PART = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]*");
    private static final Pattern COMMIT = Pattern.compile("[0-9a-f]{40}");
    private static final Pattern ETAG = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]*");

    private final String repoId;
    private final Path dir;
    private final Path locks;

    public RepoCache(Path cacheDir, String repoId) {
        this.repoId = checkRepoId(repoId);
        String folder = "models--" + repoId.replace("/", "--");
        this.dir = cacheDir.resolve(folder);
        this.locks = cacheDir.resolve(".locks").resolve(folder);
    }

    /** Org/Name with huggingface_hub's rules: letters, digits, '.', '_', '-'; no '--' or '..'; at most 96 chars. */
    public static String checkRepoId(String repoId) {
        String[] parts = repoId == null ? new String[0] : repoId.split("/", -1);
        boolean ok = parts.length == 2 && repoId.length() <= 96 && !repoId.contains("--") && !repoId.contains("..")
                && REPO_PART.matcher(parts[0]).matches() && REPO_PART.matcher(parts[1]).matches();
        if (!ok) throw new AyaException("'" + repoId + "' is not a Hugging Face repo id like CohereLabs/tiny-aya-global");
        return repoId;
    }

    public static boolean isCommit(String revision) {
        return COMMIT.matcher(revision).matches();
    }

    /** A commit sha from the server, checked before it names a directory. */
    static String checkCommit(String commit, String source) {
        if (commit == null || !isCommit(commit)) {
            throw new AyaException(source + " gave no usable commit id (got '" + commit + "'): is HF_ENDPOINT a Hugging Face hub?");
        }
        return commit;
    }

    /** huggingface_hub's etag normalization (drop a weak "W/" prefix and quotes), checked before it names a file. */
    static String normalizeEtag(String etag, String source) {
        String e = etag == null ? null : etag.strip();
        if (e != null && e.startsWith("W/")) e = e.substring(2);
        if (e != null) e = e.replace("\"", "");
        if (e == null || e.length() > 128 || !ETAG.matcher(e).matches()) {
            throw new AyaException(source + " gave no usable ETag (got '" + etag + "'): is HF_ENDPOINT a Hugging Face hub?");
        }
        return e;
    }

    /** Branch, tag or commit: relative, no '..' (it becomes a path under refs/). */
    public static String checkRevision(String revision) {
        boolean ok = revision != null && !revision.isBlank() && !revision.startsWith("/") && revision.length() < 256;
        if (ok) {
            for (String segment : revision.split("/", -1)) {
                if (segment.isEmpty() || segment.equals(".") || segment.equals("..") || segment.contains("\\")) ok = false;
            }
        }
        if (!ok) throw new AyaException("'" + revision + "' is not a usable revision (a branch, tag or commit sha)");
        return revision;
    }

    public String repoId() {
        return repoId;
    }

    public Path dir() {
        return dir;
    }

    public Path blob(String etag) {
        return dir.resolve("blobs").resolve(etag);
    }

    public Path incomplete(String etag) {
        return dir.resolve("blobs").resolve(etag + ".incomplete");
    }

    public Path lockFile(String etag) {
        return locks.resolve(etag + ".lock");
    }

    public Path snapshot(String commit) {
        return dir.resolve("snapshots").resolve(commit);
    }

    /** The commit a revision points to in this cache: a commit sha is itself, a branch or tag is read from refs/. */
    public Optional<String> commitOf(String revision) {
        if (isCommit(revision)) return Optional.of(revision);
        Path ref = dir.resolve("refs").resolve(revision);
        if (!Files.isRegularFile(ref)) return Optional.empty();
        try {
            String commit = Files.readString(ref, StandardCharsets.US_ASCII).strip();
            return isCommit(commit) ? Optional.of(commit) : Optional.empty();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + ref + ": " + e.getMessage(), e);
        }
    }

    /** Records that a branch or tag points to a commit (nothing to record when the revision is the commit). */
    public void writeRef(String revision, String commit) throws IOException {
        if (revision.equals(commit)) return;
        Path ref = dir.resolve("refs").resolve(revision);
        if (Files.isRegularFile(ref) && Files.readString(ref, StandardCharsets.US_ASCII).equals(commit)) return;
        writeAtomically(ref, commit.getBytes(StandardCharsets.US_ASCII));
    }

    /** Points snapshots/{commit}/{file} at blobs/{etag} with a relative symlink, replacing what was there atomically. */
    public void link(String commit, String file, String etag) throws IOException {
        Path pointer = snapshot(commit).resolve(file);
        Files.createDirectories(pointer.getParent());
        Path target = pointer.getParent().relativize(blob(etag));
        if (Files.isSymbolicLink(pointer) && Files.readSymbolicLink(pointer).equals(target)) return;
        Path temp = TempFiles.create(pointer, t -> Files.createSymbolicLink(t, target));
        try {
            TempFiles.commit(temp, pointer);
        } finally {
            TempFiles.delete(temp);
        }
    }

    /** huggingface_hub's marker for a file that does not exist at a commit. */
    public void markMissing(String commit, String file) throws IOException {
        Path marker = dir.resolve(".no_exist").resolve(commit).resolve(file);
        Files.createDirectories(marker.getParent());
        try {
            Files.createFile(marker);
        } catch (FileAlreadyExistsException e) {
            // another thread or process marked it first: the same empty marker
        }
    }

    static void writeAtomically(Path file, byte[] content) throws IOException {
        Files.createDirectories(file.getParent());
        Path temp = TempFiles.create(file);
        try {
            Files.write(temp, content);
            TempFiles.commit(temp, file);
        } finally {
            TempFiles.delete(temp);
        }
    }

    static void move(Path from, Path to) throws IOException {
        try {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(from, to, StandardCopyOption.REPLACE_EXISTING);
        }
    }
}
