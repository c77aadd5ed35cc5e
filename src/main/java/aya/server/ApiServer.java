package aya.server;

import aya.AyaException;
import aya.generation.AyaModel;
import aya.generation.QueueFullException;
import aya.generation.Scheduler;
import aya.generation.StopReason;
import aya.tokenizer.Tokenizer;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadLocalRandom;

/**
 * An OpenAI-compatible HTTP server over a {@link Scheduler}: it only parses and validates requests and streams
 * answers; the scheduler owns the model. Built on the JDK's {@code jdk.httpserver} with one virtual thread per
 * exchange (see docs/server.md for why), JSON by Jackson.
 *
 * <p>It listens from {@link #start} on; until {@link #ready} hands it the model, {@code /health} answers 503 and
 * every other endpoint 503 too.
 */
public final class ApiServer implements AutoCloseable {

    /** Largest request body accepted (413 beyond): a prompt of the longest context as text or ids fits many times. */
    public static final int MAX_BODY_BYTES = 4 << 20;
    /** How much of a too-large body is read and dropped before the 413, so that the client sees the answer. */
    static final long DRAIN_BYTES = 64L << 20;

    /**
     * @param host    address to bind (127.0.0.1 unless told otherwise)
     * @param port    0 = any free port
     * @param apiKey  required as {@code Authorization: Bearer KEY} on every endpoint but /health; null = none
     * @param modelId the name /v1/models and every answer give the model
     */
    public record Config(String host, int port, String apiKey, String modelId) {
    }

    /** What serves requests once the model is loaded; {@code context} bounds each sequence. */
    private record Engine(AyaModel model, Scheduler scheduler, int context) {
    }

    @FunctionalInterface
    private interface Handler {
        /** Answers the exchange and returns the status it sent. */
        int handle(HttpExchange exchange, Engine engine) throws IOException;
    }

    private record Route(String method, Handler handler, boolean needsModel) {
    }

    private final Map<String, Route> routes = Map.of(
            "/v1/chat/completions", new Route("POST", (x, e) -> complete(x, e, true), true),
            "/v1/completions", new Route("POST", (x, e) -> complete(x, e, false), true),
            "/v1/models", new Route("GET", this::models, true),
            "/health", new Route("GET", this::health, false),
            "/metrics", new Route("GET", this::metrics, false),
            "/tokenize", new Route("POST", this::tokenize, true),
            "/detokenize", new Route("POST", this::detokenize, true));

    private final Config config;
    private final HttpServer http;
    private final ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor();
    private final ObjectMapper json = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
    private final ServerMetrics metrics = new ServerMetrics();
    private final byte[] keyDigest;  // SHA-256 of the API key, or null
    private final long created = System.currentTimeMillis() / 1000;
    private final PrintStream log;
    private volatile Engine engine;
    private volatile boolean draining;

    private ApiServer(Config config, PrintStream log) throws IOException {
        this.config = config;
        this.log = log;
        this.keyDigest = config.apiKey() == null ? null : sha256(config.apiKey());
        this.http = HttpServer.create(new InetSocketAddress(config.host(), config.port()), 0);
        http.setExecutor(executor);
        http.createContext("/", this::dispatch);
    }

    /** Binds and starts answering (503 until {@link #ready}); {@code log} gets internal errors (null = silent). */
    public static ApiServer start(Config config, PrintStream log) {
        if (config.apiKey() != null && config.apiKey().isEmpty()) throw new AyaException("the API key is empty");
        try {
            ApiServer s = new ApiServer(config, log);
            s.http.start();
            return s;
        } catch (IOException e) {
            throw new AyaException("cannot listen on " + config.host() + ":" + config.port() + ": " + e.getMessage());
        }
    }

    /** The model is loaded: serve requests through {@code scheduler}, each sequence at most {@code context} tokens. */
    public void ready(AyaModel model, Scheduler scheduler, int context) {
        engine = new Engine(model, scheduler, context);
    }

    public int port() {
        return http.getAddress().getPort();
    }

    /** The base URL, e.g. http://127.0.0.1:8080 (IPv6 hosts in brackets). */
    public String url() {
        String host = config.host().contains(":") ? "[" + config.host() + "]" : config.host();
        return "http://" + host + ":" + port();
    }

    /** From now on /health answers 503 and new completions are refused with 503 (the scheduler is draining). */
    public void drain() {
        draining = true;
    }

    /** Closes the listening socket, waits up to {@code seconds} for exchanges in progress, then closes them. */
    public void stop(int seconds) {
        draining = true;
        http.stop(seconds);
        executor.shutdownNow();
    }

    @Override
    public void close() {
        stop(0);
    }

    // ---- dispatch, errors, authentication ----

    private void dispatch(HttpExchange x) {
        String path = x.getRequestURI().getPath();
        Route route = routes.get(path);
        int status = 500;
        try {
            if (route == null) throw new ApiError(404, "not_found_error", null, "no endpoint " + path);
            if (!route.method().equals(x.getRequestMethod())) {
                x.getResponseHeaders().set("Allow", route.method());
                throw new ApiError(405, "invalid_request_error", null, path + " takes " + route.method() + ", not " + x.getRequestMethod());
            }
            if (keyDigest != null && !path.equals("/health")) checkKey(x);
            Engine e = engine;
            if (route.needsModel() && e == null) throw new ApiError(503, "unavailable_error", null, "the model is loading");
            status = route.handler().handle(x, e);
        } catch (ApiError err) {
            status = err.status;
            sendError(x, err);
        } catch (IOException gone) {
            status = 499; // the client closed the connection (nginx's code)
        } catch (AyaException unservable) { // what this model cannot do for the request, e.g. text without a tokenizer
            status = 400;
            sendError(x, new ApiError(400, "invalid_request_error", null, unservable.getMessage()));
        } catch (RuntimeException internal) {
            if (log != null) log.println("aya: internal error on " + path + ": " + internal);
            status = 500;
            sendError(x, new ApiError(500, "server_error", null, "internal error: " + internal.getClass().getSimpleName()));
        } finally {
            if (!counted.remove(x)) metrics.request(endpoint(x), status); // a stream: counted when it ends
            x.close();
        }
    }

    /** Exchanges already in /metrics (see {@link #countNow}); the JDK's exchange attributes are shared by all of them. */
    private final Set<HttpExchange> counted = ConcurrentHashMap.newKeySet();

    /** The endpoint label of a request in /metrics: its path when it is one of ours, else "other". */
    private String endpoint(HttpExchange x) {
        String path = x.getRequestURI().getPath();
        return routes.containsKey(path) ? path : "other";
    }

    /**
     * Counts a whole answer in /metrics before its status line goes out: a client that reads it and then asks
     * /metrics finds it counted.
     */
    private void countNow(HttpExchange x, int status) {
        metrics.request(endpoint(x), status);
        counted.add(x);
    }

    private void checkKey(HttpExchange x) {
        String header = x.getRequestHeaders().getFirst("Authorization");
        if (header == null || !header.regionMatches(true, 0, "Bearer ", 0, 7)) {
            x.getResponseHeaders().set("WWW-Authenticate", "Bearer");
            throw new ApiError(401, "authentication_error", null, "missing API key: send the header Authorization: Bearer KEY");
        }
        // compare digests: constant time whatever the lengths
        if (!MessageDigest.isEqual(sha256(header.substring(7).strip()), keyDigest)) {
            x.getResponseHeaders().set("WWW-Authenticate", "Bearer");
            throw new ApiError(401, "authentication_error", null, "invalid API key");
        }
    }

    private void sendError(HttpExchange x, ApiError err) {
        if (x.getResponseCode() != -1) return; // headers already sent (a stream): nothing more can be said here
        ObjectNode body = json.createObjectNode();
        ObjectNode e = body.putObject("error");
        e.put("message", err.getMessage());
        e.put("type", err.type);
        e.put("param", err.param);
        e.put("code", code(err.status));
        try {
            send(x, err.status, body);
        } catch (IOException ignored) {
            // the client is gone
        }
    }

    /** OpenAI's {@code code} is a string: one per status here. */
    static String code(int status) {
        return switch (status) {
            case 400 -> "invalid_request";
            case 401 -> "invalid_api_key";
            case 404 -> "not_found";
            case 405 -> "method_not_allowed";
            case 413 -> "request_too_large";
            case 429 -> "queue_full";
            case 503 -> "unavailable";
            default -> "internal_error";
        };
    }

    private int send(HttpExchange x, int status, JsonNode body) throws IOException {
        byte[] bytes = json.writeValueAsBytes(body);
        x.getResponseHeaders().set("Content-Type", "application/json; charset=utf-8");
        countNow(x, status);
        x.sendResponseHeaders(status, bytes.length);
        try (OutputStream out = x.getResponseBody()) {
            out.write(bytes);
        }
        return status;
    }

    /** The body as a JSON object: 413 beyond {@link #MAX_BODY_BYTES}, 400 when it is not JSON or not an object. */
    private JsonNode readJson(HttpExchange x) throws IOException {
        String length = x.getRequestHeaders().getFirst("Content-Length");
        if (length != null && length.length() < 19 && length.chars().allMatch(Character::isDigit) && Long.parseLong(length) > MAX_BODY_BYTES) {
            throw tooLarge(x);
        }
        byte[] body = x.getRequestBody().readNBytes(MAX_BODY_BYTES + 1);
        if (body.length > MAX_BODY_BYTES) throw tooLarge(x);
        JsonNode node;
        try {
            node = json.readTree(body);
        } catch (JsonProcessingException e) {
            throw ApiError.invalid(null, "malformed JSON: " + e.getOriginalMessage());
        }
        if (node == null || !node.isObject()) throw ApiError.invalid(null, "the body must be a JSON object");
        return node;
    }

    /**
     * The 413 for a body over the limit, after reading what is left of it (up to {@link #DRAIN_BYTES}): closing a socket
     * with unread bytes makes TCP reset it, and the reset can discard the answer before the client reads it.
     */
    private static ApiError tooLarge(HttpExchange x) throws IOException {
        InputStream rest = x.getRequestBody();
        byte[] drop = new byte[64 << 10];
        for (long left = DRAIN_BYTES; left > 0; ) {
            int n = rest.read(drop, 0, (int) Math.min(drop.length, left));
            if (n < 0) break;
            left -= n;
        }
        return new ApiError(413, "invalid_request_error", null, "the body is larger than " + MAX_BODY_BYTES + " bytes");
    }

    // ---- /v1/chat/completions and /v1/completions ----

    /** Hands a request's tokens from the scheduler thread to the connection's thread (the callbacks only queue). */
    private static final class Events implements Scheduler.Listener {
        final LinkedBlockingQueue<Object> queue = new LinkedBlockingQueue<>(); // String, Completion or RuntimeException
        volatile long firstToken;

        @Override
        public void onToken(int id, String text) {
            if (firstToken == 0) firstToken = System.nanoTime();
            queue.add(text); // a token whose text is not complete yet (part of a UTF-8 character) streams as "", as on llama-server
        }

        @Override
        public void onDone(Scheduler.Completion c) {
            queue.add(c);
        }

        @Override
        public void onError(RuntimeException e) {
            queue.add(e);
        }
    }

    private int complete(HttpExchange x, Engine e, boolean chat) throws IOException {
        long arrived = System.nanoTime();
        JsonNode body = readJson(x);
        CompletionRequest request = chat ? CompletionRequest.chat(body, e.model(), e.context())
                : CompletionRequest.completion(body, e.model(), e.context());
        if (draining) throw new ApiError(503, "unavailable_error", null, "the server is shutting down");
        Events events = new Events();
        Scheduler.Request running;
        try {
            running = e.scheduler().submit(request.prompt(), request.settings(), events);
        } catch (QueueFullException full) {
            x.getResponseHeaders().set("Retry-After", "1");
            throw new ApiError(429, "rate_limit_error", null, full.getMessage());
        } catch (AyaException bad) { // an empty prompt, or one longer than the context
            throw ApiError.invalid(chat ? "messages" : "prompt", bad.getMessage());
        }
        Answer answer = new Answer(chat, (chat ? "chatcmpl-" : "cmpl-") + HexFormat.of().toHexDigits(ThreadLocalRandom.current().nextLong()),
                System.currentTimeMillis() / 1000, arrived, events);
        try {
            return request.stream() ? stream(x, request, answer, running) : whole(x, answer);
        } catch (IOException | RuntimeException gone) {
            running.cancel(); // the client went away (or this thread failed): free the slot
            throw gone;
        }
    }

    /** One answer being produced: its id, creation time and event queue. */
    private record Answer(boolean chat, String id, long created, long arrived, Events events) {
    }

    private int whole(HttpExchange x, Answer a) throws IOException {
        StringBuilder text = new StringBuilder();
        Object event;
        while (!((event = take(a.events())) instanceof Scheduler.Completion)) {
            if (event instanceof RuntimeException failed) throw generationFailed(failed);
            text.append((String) event);
        }
        Scheduler.Completion c = (Scheduler.Completion) event;
        metrics.completion(c);
        ObjectNode body = envelope(a, false);
        ObjectNode choice = body.putArray("choices").addObject();
        choice.put("index", 0);
        if (a.chat()) {
            ObjectNode message = choice.putObject("message");
            message.put("role", "assistant");
            message.put("content", c.text());
        } else {
            choice.put("text", c.text());
            choice.putNull("logprobs");
        }
        choice.put("finish_reason", finishReason(c.reason()));
        body.set("usage", usage(c));
        body.set("timings", timings(a, c));
        return send(x, 200, body);
    }

    private int stream(HttpExchange x, CompletionRequest request, Answer a, Scheduler.Request running) throws IOException {
        x.getResponseHeaders().set("Content-Type", "text/event-stream; charset=utf-8");
        x.getResponseHeaders().set("Cache-Control", "no-cache");
        x.sendResponseHeaders(200, 0); // chunked
        OutputStream out = x.getResponseBody();
        if (a.chat()) {
            ObjectNode first = chunk(a);
            first.withArray("choices").addObject().put("index", 0).putNull("finish_reason")
                    .putObject("delta").put("role", "assistant").put("content", "");
            event(out, first);
        }
        while (true) {
            Object ev = take(a.events());
            if (ev instanceof String text) {
                ObjectNode piece = chunk(a);
                ObjectNode choice = piece.withArray("choices").addObject().put("index", 0);
                if (a.chat()) choice.putObject("delta").put("content", text);
                else choice.put("text", text);
                choice.putNull("finish_reason");
                event(out, piece);
            } else if (ev instanceof Scheduler.Completion c) {
                metrics.completion(c);
                ObjectNode last = chunk(a);
                ObjectNode choice = last.withArray("choices").addObject().put("index", 0);
                if (a.chat()) choice.putObject("delta");
                else choice.put("text", "");
                choice.put("finish_reason", finishReason(c.reason()));
                last.set("timings", timings(a, c));
                event(out, last);
                if (request.includeUsage()) {
                    ObjectNode usage = chunk(a);
                    usage.putArray("choices");
                    usage.set("usage", usage(c));
                    event(out, usage);
                }
                break;
            } else {
                ApiError failed = generationFailed((RuntimeException) ev);
                ObjectNode error = json.createObjectNode();
                error.putObject("error").put("message", failed.getMessage()).put("type", failed.type).putNull("param")
                        .put("code", code(failed.status));
                event(out, error);
                break;
            }
        }
        out.write("data: [DONE]\n\n".getBytes(StandardCharsets.US_ASCII));
        out.flush();
        out.close();
        return 200;
    }

    /** A generation the scheduler could not finish, as a 500 (logged; the message only if it is a user-facing one). */
    private ApiError generationFailed(RuntimeException e) {
        if (log != null) log.println("aya: generation failed: " + e);
        return new ApiError(500, "server_error", null, e instanceof AyaException ? e.getMessage() : "internal error: " + e.getClass().getSimpleName());
    }

    private static Object take(Events events) {
        try {
            return events.queue.take();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AyaException("interrupted while waiting for the scheduler");
        }
    }

    /** One server-sent event, written through to the socket: a client that has gone fails here (IOException). */
    private void event(OutputStream out, JsonNode data) throws IOException {
        out.write(("data: " + json.writeValueAsString(data) + "\n\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    private ObjectNode envelope(Answer a, boolean chunk) {
        ObjectNode body = json.createObjectNode();
        body.put("id", a.id());
        body.put("object", a.chat() ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion");
        body.put("created", a.created());
        body.put("model", config.modelId());
        return body;
    }

    private ObjectNode chunk(Answer a) {
        return envelope(a, true);
    }

    /** OpenAI's finish_reason: "stop" for an end token or stop string, "length" when max_tokens or the context ran out. */
    static String finishReason(StopReason reason) {
        return switch (reason) {
            case END_TOKEN, STOP_STRING, CANCELLED -> "stop";
            case MAX_TOKENS, CONTEXT_FULL -> "length";
        };
    }

    private ObjectNode usage(Scheduler.Completion c) {
        ObjectNode u = json.createObjectNode();
        u.put("prompt_tokens", c.promptTokens());
        u.put("completion_tokens", c.ids().length);
        u.put("total_tokens", c.promptTokens() + c.ids().length);
        u.putObject("prompt_tokens_details").put("cached_tokens", c.cachedPromptTokens());
        return u;
    }

    /** llama-server's timings, plus the time in the queue and the time from arrival to the first token. */
    private ObjectNode timings(Answer a, Scheduler.Completion c) {
        ObjectNode t = json.createObjectNode();
        int promptN = c.promptTokens() - c.cachedPromptTokens(), predictedN = c.ids().length;
        double promptMs = c.promptNanos() / 1e6, predictedMs = c.generationNanos() / 1e6;
        t.put("cache_n", c.cachedPromptTokens());
        t.put("prompt_n", promptN);
        t.put("prompt_ms", promptMs);
        t.put("prompt_per_token_ms", promptN == 0 ? 0 : promptMs / promptN);
        t.put("prompt_per_second", promptMs <= 0 ? 0 : promptN * 1e3 / promptMs);
        t.put("predicted_n", predictedN);
        t.put("predicted_ms", predictedMs);
        t.put("predicted_per_token_ms", predictedN == 0 ? 0 : predictedMs / predictedN);
        t.put("predicted_per_second", predictedMs <= 0 ? 0 : predictedN * 1e3 / predictedMs);
        t.put("queued_ms", c.queuedNanos() / 1e6);
        long first = a.events().firstToken;
        if (first != 0) t.put("first_token_ms", (first - a.arrived()) / 1e6);
        return t;
    }

    // ---- the other endpoints ----

    private int models(HttpExchange x, Engine e) throws IOException {
        ObjectNode body = json.createObjectNode();
        body.put("object", "list");
        ObjectNode m = body.putArray("data").addObject();
        m.put("id", config.modelId());
        m.put("object", "model");
        m.put("created", created);
        m.put("owned_by", "aya-java");
        m.putObject("meta").put("n_ctx", e.context()).put("n_vocab", e.model().config().vocabSize());
        return send(x, 200, body);
    }

    private int health(HttpExchange x, Engine e) throws IOException {
        if (e == null) throw new ApiError(503, "unavailable_error", null, "the model is loading");
        if (draining) throw new ApiError(503, "unavailable_error", null, "the server is shutting down");
        return send(x, 200, json.createObjectNode().put("status", "ok"));
    }

    private int metrics(HttpExchange x, Engine e) throws IOException {
        byte[] text = metrics.render(e == null ? null : e.scheduler().stats()).getBytes(StandardCharsets.UTF_8);
        x.getResponseHeaders().set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
        countNow(x, 200);
        x.sendResponseHeaders(200, text.length);
        try (OutputStream out = x.getResponseBody()) {
            out.write(text);
        }
        return 200;
    }

    /** llama-server's {@code /tokenize}: {@code content}, {@code add_special} (default false), {@code with_pieces}. */
    private int tokenize(HttpExchange x, Engine e) throws IOException {
        JsonNode body = readJson(x);
        JsonNode content = body.get("content");
        if (content == null || !content.isTextual()) throw ApiError.invalid("content", "'content' must be a string");
        boolean withPieces = CompletionRequest.bool(body, "with_pieces", false);
        Tokenizer tokenizer = e.model().tokenizer();
        int[] ids = tokenizer.encode(content.asText(), CompletionRequest.bool(body, "add_special", false));
        ObjectNode out = json.createObjectNode();
        ArrayNode tokens = out.putArray("tokens");
        for (int id : ids) {
            if (withPieces) tokens.addObject().put("id", id).put("piece", tokenizer.decode(new int[] {id}));
            else tokens.add(id);
        }
        return send(x, 200, out);
    }

    /** llama-server's {@code /detokenize}: {@code tokens} to {@code content} (special tokens as their text). */
    private int detokenize(HttpExchange x, Engine e) throws IOException {
        JsonNode body = readJson(x);
        JsonNode tokens = body.get("tokens");
        if (tokens == null || !tokens.isArray()) throw ApiError.invalid("tokens", "'tokens' must be an array of token ids");
        Tokenizer tokenizer = e.model().tokenizer();
        int[] ids = CompletionRequest.tokenIds(tokens, "tokens", tokenizer.vocabSize());
        return send(x, 200, json.createObjectNode().put("content", tokenizer.decode(ids)));
    }

    private static byte[] sha256(String s) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is part of every JDK", e);
        }
    }
}
