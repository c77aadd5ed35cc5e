package aya.hub;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A loopback stand-in for huggingface.co: the model API listing, HEAD/GET on resolve URLs with X-Repo-Commit,
 * ETag (git blob sha1) or X-Linked-Etag (sha256) and X-Linked-Size, 302 redirects of LFS files to a second server
 * (the "CDN", another origin) that honours Range requests, 401/403 for gated repos, 404 with X-Error-Code.
 * It logs every request so tests can count them and inspect their headers.
 */
final class FakeHub implements AutoCloseable {

    record Request(String server, String method, String path, String authorization, String range) {}

    static final class Repo {
        final String id;
        final String commit;
        final Map<String, byte[]> files = new LinkedHashMap<>();
        final Set<String> lfs = ConcurrentHashMap.newKeySet();
        String gatedToken;          // non-null: only this token may read files
        final Map<String, String> etagOverride = new ConcurrentHashMap<>();

        Repo(String id, String commit) {
            this.id = id;
            this.commit = commit;
        }

        Repo file(String name, byte[] content) {
            files.put(name, content);
            return this;
        }

        Repo lfsFile(String name, byte[] content) {
            files.put(name, content);
            lfs.add(name);
            return this;
        }
    }

    final List<Request> requests = Collections.synchronizedList(new ArrayList<>());
    final AtomicLong cdnBytesSent = new AtomicLong();
    volatile boolean corruptCdn;
    volatile boolean ignoreRange;
    volatile boolean cutCdnOnce;    // the next CDN body stops halfway (the connection drops)
    volatile boolean cdnHop;        // LFS redirects go to /hop/... on the CDN, which redirects again (307)
    volatile boolean stallCdn;      // full CDN bodies send their first half, then nothing until this is cleared

    private final Map<String, Repo> repos = new ConcurrentHashMap<>();
    private final HttpServer hub;
    private final HttpServer cdn;
    private final ExecutorService pool = Executors.newCachedThreadPool();

    FakeHub() throws IOException {
        InetAddress loopback = InetAddress.getLoopbackAddress();
        hub = HttpServer.create(new InetSocketAddress(loopback, 0), 0);
        cdn = HttpServer.create(new InetSocketAddress(loopback, 0), 0);
        hub.createContext("/", this::handleHub);
        cdn.createContext("/", this::handleCdn);
        hub.setExecutor(pool);
        cdn.setExecutor(pool);
        hub.start();
        cdn.start();
    }

    URI endpoint() {
        return URI.create("http://127.0.0.1:" + hub.getAddress().getPort());
    }

    URI cdnOrigin() {
        return URI.create("http://127.0.0.1:" + cdn.getAddress().getPort());
    }

    Repo repo(String id) {
        return repo(id, HexFormat.of().formatHex(digest("SHA-1", ("commit of " + id).getBytes(StandardCharsets.UTF_8))));
    }

    Repo repo(String id, String commit) {
        Repo r = new Repo(id, commit);
        repos.put(id, r);
        return r;
    }

    List<Request> requests(String server) {
        synchronized (requests) {
            return requests.stream().filter(r -> r.server().equals(server)).toList();
        }
    }

    static String sha256(byte[] content) {
        return HexFormat.of().formatHex(digest("SHA-256", content));
    }

    /** git's object id of a file: sha1 over "blob {size}\0" + content (what the hub sends as ETag of non-LFS files). */
    static String gitBlobSha1(byte[] content) {
        byte[] header = ("blob " + content.length + "\0").getBytes(StandardCharsets.US_ASCII);
        byte[] all = new byte[header.length + content.length];
        System.arraycopy(header, 0, all, 0, header.length);
        System.arraycopy(content, 0, all, header.length, content.length);
        return HexFormat.of().formatHex(digest("SHA-1", all));
    }

    private static byte[] digest(String algorithm, byte[] content) {
        try {
            return MessageDigest.getInstance(algorithm).digest(content);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    private void log(String server, HttpExchange ex) {
        requests.add(new Request(server, ex.getRequestMethod(), ex.getRequestURI().getRawPath(),
                ex.getRequestHeaders().getFirst("Authorization"), ex.getRequestHeaders().getFirst("Range")));
    }

    private void handleHub(HttpExchange ex) throws IOException {
        try (ex) {
            log("hub", ex);
            String[] parts = ex.getRequestURI().getRawPath().split("/");
            // /api/models/{org}/{name}/revision/{rev}
            if (parts.length == 7 && parts[1].equals("api") && parts[2].equals("models") && parts[5].equals("revision")) {
                Repo repo = repos.get(parts[3] + "/" + parts[4]);
                if (repo == null) { error(ex, 404, "RepoNotFound"); return; }
                String rev = decode(parts[6]);
                if (!rev.equals("main") && !rev.equals(repo.commit)) { error(ex, 404, "RevisionNotFound"); return; }
                StringBuilder json = new StringBuilder("{\"id\":\"" + repo.id + "\",\"sha\":\"" + repo.commit + "\",\"siblings\":[");
                int i = 0;
                for (String f : repo.files.keySet()) json.append(i++ > 0 ? "," : "").append("{\"rfilename\":\"").append(f).append("\"}");
                json.append("]}");
                send(ex, 200, json.toString().getBytes(StandardCharsets.UTF_8));
                return;
            }
            // /{org}/{name}/resolve/{rev}/{file...}
            if (parts.length >= 6 && parts[3].equals("resolve")) {
                Repo repo = repos.get(parts[1] + "/" + parts[2]);
                if (repo == null) { error(ex, 404, "RepoNotFound"); return; }
                String rev = decode(parts[4]);
                if (!rev.equals("main") && !rev.equals(repo.commit)) { error(ex, 404, "RevisionNotFound"); return; }
                StringBuilder file = new StringBuilder();
                for (int i = 5; i < parts.length; i++) file.append(i > 5 ? "/" : "").append(decode(parts[i]));
                if (repo.gatedToken != null) {
                    String auth = ex.getRequestHeaders().getFirst("Authorization");
                    if (auth == null) { error(ex, 401, "GatedRepo"); return; }
                    if (!auth.equals("Bearer " + repo.gatedToken)) { error(ex, 403, "GatedRepo"); return; }
                }
                byte[] content = repo.files.get(file.toString());
                ex.getResponseHeaders().set("X-Repo-Commit", repo.commit);
                if (content == null) { error(ex, 404, "EntryNotFound"); return; }
                String name = file.toString();
                if (repo.lfs.contains(name)) {
                    String sha = sha256(content);
                    ex.getResponseHeaders().set("X-Linked-Etag", "\"" + repo.etagOverride.getOrDefault(name, sha) + "\"");
                    ex.getResponseHeaders().set("X-Linked-Size", Long.toString(content.length));
                    ex.getResponseHeaders().set("ETag", "\"" + gitBlobSha1(("pointer " + sha).getBytes(StandardCharsets.UTF_8)) + "\"");
                    ex.getResponseHeaders().set("Location", cdnOrigin() + (cdnHop ? "/hop" : "") + "/blobs/" + sha + "?signature=abc");
                    ex.sendResponseHeaders(302, -1);
                    return;
                }
                ex.getResponseHeaders().set("ETag", "W/\"" + repo.etagOverride.getOrDefault(name, gitBlobSha1(content)) + "\"");
                if (ex.getRequestMethod().equals("HEAD")) {
                    ex.getResponseHeaders().set("Content-Length", Long.toString(content.length));
                    ex.sendResponseHeaders(200, -1);
                } else {
                    send(ex, 200, content);
                }
                return;
            }
            error(ex, 404, null);
        }
    }

    private void handleCdn(HttpExchange ex) throws IOException {
        try (ex) {
            log("cdn", ex);
            String path = ex.getRequestURI().getRawPath();
            if (path.startsWith("/hop/")) {
                ex.getResponseHeaders().set("Location", path.substring(4) + "?signature=def");
                ex.sendResponseHeaders(307, -1);
                return;
            }
            byte[] content = null;
            for (Repo r : repos.values()) {
                for (byte[] c : r.files.values()) if (path.equals("/blobs/" + sha256(c))) content = c;
            }
            if (content == null) { send(ex, 404, new byte[0]); return; }
            byte[] body = content.clone();
            if (corruptCdn) body[body.length / 2] ^= 0x55;
            String range = ex.getRequestHeaders().getFirst("Range");
            if (range != null && !ignoreRange) {
                long start = Long.parseLong(range.substring("bytes=".length(), range.indexOf('-')));
                if (start >= body.length) {
                    ex.getResponseHeaders().set("Content-Range", "bytes */" + body.length);
                    ex.sendResponseHeaders(416, -1);
                    return;
                }
                byte[] rest = java.util.Arrays.copyOfRange(body, (int) start, body.length);
                ex.getResponseHeaders().set("Content-Range", "bytes " + start + "-" + (body.length - 1) + "/" + body.length);
                send(ex, 206, rest);
                return;
            }
            if (stallCdn) {
                ex.sendResponseHeaders(200, body.length);
                cdnBytesSent.addAndGet(body.length / 2);
                OutputStream out = ex.getResponseBody();
                out.write(body, 0, body.length / 2);
                out.flush();
                while (stallCdn) {
                    try {
                        Thread.sleep(20);
                    } catch (InterruptedException e) {
                        return;
                    }
                }
                return; // then the connection drops
            }
            if (cutCdnOnce) {
                cutCdnOnce = false;
                ex.sendResponseHeaders(200, body.length);
                cdnBytesSent.addAndGet(body.length / 2); // counted before writing: the client may finish before this thread resumes
                OutputStream out = ex.getResponseBody();
                out.write(body, 0, body.length / 2);
                out.flush();
                return; // closing the exchange early drops the connection
            }
            send(ex, 200, body);
        }
    }

    private void send(HttpExchange ex, int code, byte[] body) throws IOException {
        if (ex.getRequestMethod().equals("HEAD")) {
            ex.getResponseHeaders().set("Content-Length", Long.toString(body.length));
            ex.sendResponseHeaders(code, -1);
            return;
        }
        ex.sendResponseHeaders(code, body.length == 0 ? -1 : body.length);
        if (body.length > 0) {
            // counted before writing: the client can read the whole body and the test assert before this thread resumes
            if (ex.getHttpContext().getServer() == cdn) cdnBytesSent.addAndGet(body.length);
            try (OutputStream out = ex.getResponseBody()) {
                out.write(body);
            }
        }
    }

    private void error(HttpExchange ex, int code, String errorCode) throws IOException {
        if (errorCode != null) ex.getResponseHeaders().set("X-Error-Code", errorCode);
        send(ex, code, ("{\"error\":\"" + errorCode + "\"}").getBytes(StandardCharsets.UTF_8));
    }

    private static String decode(String s) {
        return URLDecoder.decode(s.replace("+", "%2B"), StandardCharsets.UTF_8);
    }

    @Override
    public void close() {
        hub.stop(0);
        cdn.stop(0);
        pool.shutdownNow();
    }
}
