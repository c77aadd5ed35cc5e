package aya.server;

import aya.generation.AyaModel;
import aya.generation.Scheduler;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Long streams on a server with one slot and a queue of one: a client that closes its connection mid-stream
 * cancels its sequence and frees the slot, a full queue answers 429, and the server keeps serving others.
 */
class ClientGoneTest {

    static final int CONTEXT = 200_000; // a stream with ignore_eos runs for many seconds on the tiny model

    @TempDir
    static Path tmp;
    static AyaModel model;
    static Scheduler scheduler;
    static ApiServer server;
    static final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

    @BeforeAll
    static void start() throws IOException {
        model = ServerFixture.load(ServerFixture.longModel(tmp));
        scheduler = new Scheduler(model, new Scheduler.Options(1, CONTEXT, 1, 64L << 20, 512));
        server = ServerFixture.serve(model, scheduler, CONTEXT, null);
    }

    @AfterAll
    static void stop() {
        if (server != null) server.close();
        if (scheduler != null) scheduler.close();
        if (model != null) model.close();
    }

    /** A streamed completion on a raw socket (so the test can drop the connection), with {@code events} read. */
    static Socket longStream(String prompt, int events) throws IOException {
        URI base = URI.create(server.url());
        Socket socket = new Socket(base.getHost(), base.getPort());
        byte[] body = ("{\"prompt\": \"" + prompt + "\", \"stream\": true, \"ignore_eos\": true, \"max_tokens\": 150000, "
                + "\"temperature\": 0}").getBytes(StandardCharsets.UTF_8);
        OutputStream out = socket.getOutputStream();
        out.write(("POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: "
                + body.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
        out.write(body);
        out.flush();
        if (events > 0) {
            BufferedReader in = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
            int seen = 0;
            for (String line; seen < events && (line = in.readLine()) != null; ) {
                if (line.startsWith("data: ")) seen++;
            }
            assertEquals(events, seen, "events before the stream ended");
        }
        return socket;
    }

    static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!condition.getAsBoolean()) {
            assertTrue(System.nanoTime() < deadline, "timed out waiting for: " + what + "; " + scheduler.stats());
            Thread.sleep(10);
        }
    }

    @Test
    void aDroppedStreamFreesItsSlotAndAFullQueueAnswers429() throws Exception {
        try (Socket running = longStream("Once upon a time", 20)) {
            await(() -> scheduler.stats().active() == 1, "the first stream runs");
            try (Socket waiting = longStream("Another story", 0)) {
                await(() -> scheduler.stats().queued() == 1, "the second one waits");
                HttpResponse<String> third = http.send(HttpRequest.newBuilder(URI.create(server.url() + "/v1/completions"))
                        .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"x\", \"max_tokens\": 2}")).build(),
                        HttpResponse.BodyHandlers.ofString());
                assertEquals(429, third.statusCode(), third.body());
                assertEquals("rate_limit_error", new ObjectMapper().readTree(third.body()).at("/error/type").asText());
                assertEquals("1", third.headers().firstValue("Retry-After").orElseThrow());
            }
            // the waiting client left: its request is cancelled when it would start (or when found gone)
        }
        // both clients are gone: the slot is freed well before 150000 tokens
        long tokensAtDrop = scheduler.stats().completionTokens();
        await(() -> scheduler.stats().active() == 0 && scheduler.stats().queued() == 0, "slot and queue free");
        assertTrue(scheduler.stats().completionTokens() - tokensAtDrop < 10_000, "generation stopped soon after the drop");

        // and the server goes on serving
        HttpResponse<String> next = http.send(HttpRequest.newBuilder(URI.create(server.url() + "/v1/completions"))
                .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"x\", \"max_tokens\": 3, \"ignore_eos\": true}")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(200, next.statusCode(), next.body());
        assertEquals(3, new ObjectMapper().readTree(next.body()).at("/usage/completion_tokens").asInt());
        String metrics = http.send(HttpRequest.newBuilder(URI.create(server.url() + "/metrics")).GET().build(),
                HttpResponse.BodyHandlers.ofString()).body();
        assertTrue(metrics.contains("aya_requests_total{endpoint=\"/v1/completions\",status=\"499\"} 2"), metrics);
    }
}
