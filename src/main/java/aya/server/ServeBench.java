package aya.server;

import aya.AyaException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;

/**
 * Load for an OpenAI-compatible server (aya serve or llama-server): N clients at once, each sending streamed
 * {@code /v1/completions} requests one after another, with a prompt of a fixed number of token ids (distinct per
 * request, so no request reuses another's cached prefix) and a fixed number of generated tokens ({@code ignore_eos}).
 * Measures aggregate tokens/s, aggregate decode tokens/s, per-stream tokens/s and time to first token, from the
 * client's side. A token is a streamed chunk with a choice's text (empty text too: a token that decodes to nothing,
 * as a random model's padding ids do on llama-server, is still a token), not the chunk that carries finish_reason.
 */
public final class ServeBench {

    /**
     * What one client count measured.
     *
     * @param aggregateTokensPerSecond all generated tokens over the wall time of the whole run (prefill included)
     * @param streamTokensPerSecondP50 median over requests of (tokens - 1) / (last event - first token)
     * @param ttftP50Ms                time from sending a request to its first token, median (p95 next)
     * @param decodeTokensPerSecond    all streams' tokens per second while every stream of the run decodes: tokens
     *                                 received between the last stream's first token and the first stream's last one,
     *                                 over that time (NaN when the streams never decode at the same time, e.g. more
     *                                 than one round per client)
     */
    public record Result(int clients, int requests, long tokens, double seconds, double aggregateTokensPerSecond,
                         double streamTokensPerSecondP50, double ttftP50Ms, double ttftP95Ms,
                         double decodeTokensPerSecond) {
    }

    /** One streamed request as the client saw it: when each token arrived. */
    record Stream1(long sent, long firstToken, long end, int tokens, long[] tokenTimes) {
    }

    private final URI base;
    private final String apiKey;
    private final int promptTokens, genTokens, rounds;
    private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(10)).build();
    private final ObjectMapper json = new ObjectMapper();
    private int[] filler; // token ids the prompts are cut from
    private int sequence; // makes each prompt distinct

    /** {@code base} like http://127.0.0.1:8080; {@code rounds} requests per client, one after another. */
    public ServeBench(URI base, String apiKey, int promptTokens, int genTokens, int rounds) {
        if (promptTokens < 1 || genTokens < 1 || rounds < 1) {
            throw new AyaException("prompt tokens, generated tokens and rounds must be at least 1");
        }
        this.base = base;
        this.apiKey = apiKey;
        this.promptTokens = promptTokens;
        this.genTokens = genTokens;
        this.rounds = rounds;
    }

    /** Sends one request first (warm-up: JIT, page cache), not measured. */
    public void warmUp() {
        stream(nextPrompt());
    }

    public Result run(int clients) {
        List<int[]> prompts = new ArrayList<>();
        for (int i = 0; i < clients * rounds; i++) prompts.add(nextPrompt());
        long start = System.nanoTime();
        List<Stream1> done = new ArrayList<>();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<List<Stream1>>> futures = new ArrayList<>();
            for (int c = 0; c < clients; c++) {
                List<int[]> mine = prompts.subList(c * rounds, (c + 1) * rounds);
                futures.add(pool.submit(() -> mine.stream().map(this::stream).toList()));
            }
            for (Future<List<Stream1>> f : futures) done.addAll(f.get());
        } catch (java.util.concurrent.ExecutionException e) {
            throw e.getCause() instanceof RuntimeException r ? r : new AyaException(e.getCause().toString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AyaException("interrupted");
        }
        long end = done.stream().mapToLong(Stream1::end).max().orElse(start);
        long tokens = done.stream().mapToLong(Stream1::tokens).sum();
        double seconds = (end - start) / 1e9;
        double[] ttft = done.stream().mapToDouble(s -> (s.firstToken() - s.sent()) / 1e6).sorted().toArray();
        double[] perStream = done.stream().filter(s -> s.tokens() > 1 && s.end() > s.firstToken())
                .mapToDouble(s -> (s.tokens() - 1) * 1e9 / (s.end() - s.firstToken())).sorted().toArray();
        return new Result(clients, done.size(), tokens, seconds, tokens / seconds, percentile(perStream, 50),
                percentile(ttft, 50), percentile(ttft, 95), decodeRate(done));
    }

    /** Tokens per second of all streams in the window where every stream has its first token and none has ended. */
    static double decodeRate(List<Stream1> streams) {
        long from = Long.MIN_VALUE, to = Long.MAX_VALUE;
        for (Stream1 s : streams) {
            if (s.tokenTimes().length < 2) return Double.NaN;
            from = Math.max(from, s.tokenTimes()[0]);
            to = Math.min(to, s.tokenTimes()[s.tokenTimes().length - 1]);
        }
        if (to <= from) return Double.NaN;
        long counted = 0;
        for (Stream1 s : streams) for (long t : s.tokenTimes()) if (t > from && t <= to) counted++;
        return counted * 1e9 / (to - from);
    }

    /** Nearest-rank percentile of sorted values (NaN when empty). */
    public static double percentile(double[] sorted, int p) {
        if (sorted.length == 0) return Double.NaN;
        int rank = (int) Math.ceil(p / 100.0 * sorted.length);
        return sorted[Math.max(0, rank - 1)];
    }

    private int[] nextPrompt() {
        if (filler == null) filler = fillerIds();
        int offset = (sequence++ * 7919) % filler.length; // a different start each time: no shared prefix
        int[] ids = new int[promptTokens];
        for (int i = 0; i < ids.length; i++) ids[i] = filler[(offset + i) % filler.length];
        return ids;
    }

    /** Ids of ordinary text from the server's own tokenizer ({@code POST /tokenize}, which llama-server has too). */
    private int[] fillerIds() {
        String text = String.join(" ", java.util.Collections.nCopies(40,
                "The quick brown fox jumps over the lazy dog while seven wizards quietly judge boxing matches."));
        ObjectNode body = json.createObjectNode().put("content", text);
        JsonNode answer = post("/tokenize", body);
        JsonNode tokens = answer.get("tokens");
        if (tokens == null || !tokens.isArray() || tokens.size() < 16) {
            throw new AyaException(base + "/tokenize did not return token ids: " + answer);
        }
        int[] ids = new int[tokens.size()];
        for (int i = 0; i < ids.length; i++) ids[i] = tokens.get(i).asInt();
        return ids;
    }

    private JsonNode post(String path, JsonNode body) {
        try {
            HttpResponse<String> r = http.send(request(path, body), HttpResponse.BodyHandlers.ofString());
            if (r.statusCode() != 200) throw new AyaException(base + path + ": HTTP " + r.statusCode() + ": " + r.body());
            return json.readTree(r.body());
        } catch (IOException e) {
            throw new AyaException(base + path + ": " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AyaException("interrupted");
        }
    }

    private HttpRequest request(String path, JsonNode body) {
        HttpRequest.Builder b = HttpRequest.newBuilder(base.resolve(path)).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body.toString()));
        if (apiKey != null) b.header("Authorization", "Bearer " + apiKey);
        return b.build();
    }

    /** One streamed completion; the tokens come from the usage chunk, else llama-server's timings, else the events. */
    private Stream1 stream(int[] prompt) {
        ObjectNode body = json.createObjectNode();
        body.putArray("prompt").addAll(Arrays.stream(prompt).mapToObj(json.getNodeFactory()::numberNode).toList());
        body.put("max_tokens", genTokens).put("temperature", 0).put("ignore_eos", true).put("stream", true);
        body.putObject("stream_options").put("include_usage", true);
        long sent = System.nanoTime(), first = 0;
        int events = 0, counted = -1;
        List<Long> times = new ArrayList<>();
        try {
            HttpResponse<Stream<String>> r = http.send(request("/v1/completions", body), HttpResponse.BodyHandlers.ofLines());
            if (r.statusCode() != 200) {
                String error = String.join(" ", r.body().toList());
                throw new AyaException(base + "/v1/completions: HTTP " + r.statusCode() + ": " + error);
            }
            try (Stream<String> lines = r.body()) {
                for (Iterator<String> it = lines.iterator(); it.hasNext(); ) {
                    String line = it.next();
                    if (!line.startsWith("data: ")) continue;
                    String data = line.substring(6).strip();
                    if (data.equals("[DONE]")) break;
                    JsonNode chunk = json.readTree(data);
                    if (chunk.has("error")) throw new AyaException(base + ": error in the stream: " + chunk.get("error"));
                    JsonNode choices = chunk.path("choices");
                    JsonNode choice = choices.size() > 0 ? choices.get(0) : null;
                    if (choice != null && choice.has("text") && !choice.path("finish_reason").isTextual()) {
                        long now = System.nanoTime();
                        if (first == 0) first = now;
                        times.add(now);
                        events++;
                    }
                    if (chunk.path("usage").has("completion_tokens")) counted = chunk.get("usage").get("completion_tokens").asInt();
                    else if (counted < 0 && chunk.path("timings").has("predicted_n")) counted = chunk.get("timings").get("predicted_n").asInt();
                }
            }
        } catch (IOException e) {
            throw new AyaException(base + "/v1/completions: " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AyaException("interrupted");
        }
        long end = System.nanoTime();
        return new Stream1(sent, first == 0 ? end : first, end, counted >= 0 ? counted : events,
                times.stream().mapToLong(Long::longValue).toArray());
    }
}
