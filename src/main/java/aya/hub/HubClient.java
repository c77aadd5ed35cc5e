package aya.hub;

import aya.AyaException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.InputStream;
import java.net.HttpURLConnection;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * The few hub HTTP calls a download needs: list a repo at a revision, HEAD a file for its etag/commit/size/location,
 * and GET its bytes (from an offset) following redirects. The token goes only to the endpoint's own origin, never
 * to a redirect target elsewhere (LFS files redirect to a CDN). Every failure becomes a one-line AyaException.
 */
final class HubClient {

    /** @param commit the full commit sha the revision points to; @param files every file name in the repo */
    record RepoInfo(String commit, List<String> files) {}

    /**
     * @param etag     normalized etag: sha256 for LFS files, git blob sha1 for others
     * @param commit   X-Repo-Commit
     * @param size     X-Linked-Size or Content-Length; -1 if unknown
     * @param location where to GET the bytes (the CDN for LFS files)
     */
    record FileInfo(String etag, String commit, long size, URI location) {}

    private static final int CONNECT_TIMEOUT_MS = 15_000;
    private static final int READ_TIMEOUT_MS = 60_000;
    private static final int MAX_REDIRECTS = 10;
    private static final int MAX_LISTING_BYTES = 32 << 20;
    private static final String USER_AGENT = "aya-java/0.1";

    private final HubSettings settings;

    HubClient(HubSettings settings) {
        this.settings = settings;
    }

    RepoInfo listRepo(String repoId, String revision) {
        URI url = endpoint("/api/models/" + repoId + "/revision/" + encode(revision));
        HttpURLConnection c = open("GET", url, 0);
        try {
            int code = status(c, url);
            if (code != 200) throw httpError(code, c, repoId, revision, null);
            byte[] body;
            try (InputStream in = c.getInputStream()) {
                body = in.readNBytes(MAX_LISTING_BYTES + 1);
            }
            if (body.length > MAX_LISTING_BYTES) throw new AyaException(url + " sent more than 32 MB of repo listing");
            JsonNode root;
            try {
                root = new ObjectMapper().readTree(body);
            } catch (IOException e) {
                throw new AyaException(url + " did not answer with JSON (" + ModelFiles.oneLine(e) + "): is HF_ENDPOINT a Hugging Face hub?");
            }
            String commit = RepoCache.checkCommit(root == null || root.get("sha") == null ? null : root.get("sha").asText(null), url.toString());
            JsonNode siblings = root.get("siblings");
            if (siblings == null || !siblings.isArray()) throw new AyaException(url + " lists no files (no 'siblings' array)");
            List<String> files = new ArrayList<>();
            for (JsonNode s : siblings) {
                JsonNode name = s.get("rfilename");
                if (name != null && name.isTextual()) files.add(name.textValue());
            }
            return new RepoInfo(commit, List.copyOf(files));
        } catch (IOException e) {
            throw unreachable(url, e);
        } finally {
            c.disconnect();
        }
    }

    /**
     * HEAD on the resolve URL, following redirects only while they stay on the hub (same origin), like
     * huggingface_hub: a redirect elsewhere (the CDN of an LFS file) carries the metadata and is where to GET.
     */
    FileInfo head(String repoId, String revision, String file) {
        URI url = endpoint("/" + repoId + "/resolve/" + encode(revision) + "/" + encodePath(file));
        for (int hop = 0; hop <= MAX_REDIRECTS; hop++) {
            HttpURLConnection c = open("HEAD", url, 0);
            c.setRequestProperty("Accept-Encoding", "identity");
            try {
                int code = status(c, url);
                String location = c.getHeaderField("Location");
                if (code >= 300 && code < 400 && location != null && sameOrigin(url, resolve(url, location))) {
                    url = resolve(url, location); // e.g. a renamed repo: follow while on the hub itself
                    continue;
                }
                if (code >= 400) throw httpError(code, c, repoId, revision, file);
                String commit = c.getHeaderField("X-Repo-Commit");
                String linkedEtag = c.getHeaderField("X-Linked-Etag");
                String etag = RepoCache.normalizeEtag(linkedEtag != null ? linkedEtag : c.getHeaderField("ETag"), url.toString());
                long size = parseSize(c.getHeaderField("X-Linked-Size"));
                if (size < 0) size = parseSize(c.getHeaderField("Content-Length"));
                URI target = code >= 300 && location != null ? resolve(url, location) : url;
                return new FileInfo(etag, RepoCache.checkCommit(commit, url.toString()), size, target);
            } catch (IOException e) {
                throw unreachable(url, e);
            } finally {
                c.disconnect();
            }
        }
        throw new AyaException(url + ": more than " + MAX_REDIRECTS + " redirects");
    }

    /**
     * Opens a GET of {@code url} asking for the bytes from {@code offset} on, following redirects. Returns the
     * connection with status 200 (whole file), 206 (the range) or 416 (nothing left after offset).
     */
    HttpURLConnection get(URI url, long offset, String repoId, String revision, String file) {
        for (int hop = 0; hop <= MAX_REDIRECTS; hop++) {
            HttpURLConnection c = open("GET", url, offset);
            try {
                int code = status(c, url);
                if (code >= 300 && code < 400 && c.getHeaderField("Location") != null) {
                    URI next = resolve(url, c.getHeaderField("Location"));
                    c.disconnect();
                    url = next;
                    continue;
                }
                if (code == 200 || code == 206 || code == 416) return c;
                AyaException error = httpError(code, c, repoId, revision, file);
                c.disconnect();
                throw error;
            } catch (IOException e) {
                c.disconnect();
                throw unreachable(url, e);
            }
        }
        throw new AyaException(url + ": more than " + MAX_REDIRECTS + " redirects");
    }

    private HttpURLConnection open(String method, URI url, long offset) {
        try {
            HttpURLConnection c = (HttpURLConnection) url.toURL().openConnection();
            c.setRequestMethod(method);
            c.setInstanceFollowRedirects(false); // redirects are followed by hand, to decide where the token goes
            c.setConnectTimeout(CONNECT_TIMEOUT_MS);
            c.setReadTimeout(READ_TIMEOUT_MS);
            c.setUseCaches(false);
            c.setRequestProperty("User-Agent", USER_AGENT);
            if (settings.token() != null && sameOrigin(url, settings.endpoint())) {
                c.setRequestProperty("Authorization", "Bearer " + settings.token());
            }
            if (offset > 0) c.setRequestProperty("Range", "bytes=" + offset + "-");
            return c;
        } catch (IOException | IllegalArgumentException e) {
            throw new AyaException("cannot open " + url + ": " + ModelFiles.oneLine(e), e);
        }
    }

    private static int status(HttpURLConnection c, URI url) throws IOException {
        int code = c.getResponseCode();
        if (code < 0) throw new IOException("no HTTP status line from " + url.getHost());
        return code;
    }

    static boolean sameOrigin(URI a, URI b) {
        return Objects.equals(a.getScheme(), b.getScheme()) && a.getHost() != null
                && a.getHost().equalsIgnoreCase(b.getHost()) && port(a) == port(b);
    }

    private static int port(URI u) {
        if (u.getPort() != -1) return u.getPort();
        return "https".equals(u.getScheme()) ? 443 : 80;
    }

    private AyaException httpError(int code, HttpURLConnection c, String repoId, String revision, String file) {
        String errorCode = c.getHeaderField("X-Error-Code");
        String page = settings.endpoint() + "/" + repoId;
        String what = file == null ? repoId + " (revision " + revision + ")" : file + " of " + repoId + " (revision " + revision + ")";
        if ("RepoNotFound".equals(errorCode) || (code == 404 && file == null && errorCode == null)) {
            return new AyaException("repository " + repoId + " not found on " + settings.endpoint()
                    + (settings.token() == null ? " (if it is private, set HF_TOKEN)" : ""));
        }
        if ("RevisionNotFound".equals(errorCode)) {
            return new AyaException("revision '" + revision + "' not found in " + repoId);
        }
        if (code == 401 || code == 403) {
            if (settings.token() == null) {
                return new AyaException(repoId + " is gated or private: accept the licence on " + page
                        + " while logged in, then set HF_TOKEN to an access token of that account (or save it in "
                        + settings.tokenFile() + ")");
            }
            return new AyaException(repoId + " refused your token (HTTP " + code + "): accept the licence on " + page
                    + " with the account that owns HF_TOKEN, and check the token has read access");
        }
        if (code == 404) return new AyaException(what + " not found on " + settings.endpoint());
        if (code == 429) return new AyaException(settings.endpoint().getHost() + " is rate-limiting requests (HTTP 429): wait a minute and retry");
        return new AyaException("HTTP " + code + " from " + c.getURL().getHost() + " for " + what
                + (code >= 500 ? ": the server has a problem, retry later" : ""));
    }

    private static AyaException unreachable(URI url, IOException e) {
        String where = url.getHost() + (url.getPort() != -1 ? ":" + url.getPort() : "");
        return new AyaException("cannot reach " + where + " (" + e.getClass().getSimpleName() + ": "
                + ModelFiles.oneLine(e) + "); check the network, or set HF_HUB_OFFLINE=1 to use only the cache", e);
    }

    private URI endpoint(String path) {
        return URI.create(settings.endpoint() + path);
    }

    private static URI resolve(URI base, String location) {
        try {
            return base.resolve(new URI(location.strip()));
        } catch (URISyntaxException e) {
            throw new AyaException(base.getHost() + " redirected to an invalid URL: " + location);
        }
    }

    private static long parseSize(String header) {
        if (header == null) return -1;
        try {
            long v = Long.parseLong(header.strip());
            return v >= 0 ? v : -1;
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /** Percent-encodes everything but unreserved characters, like Python's quote(s, safe=""). */
    static String encode(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8).replace("+", "%20").replace("*", "%2A").replace("%7E", "~");
    }

    static String encodePath(String path) {
        StringBuilder b = new StringBuilder();
        for (String segment : path.split("/", -1)) {
            if (!b.isEmpty()) b.append('/');
            b.append(encode(segment));
        }
        return b.toString();
    }
}
