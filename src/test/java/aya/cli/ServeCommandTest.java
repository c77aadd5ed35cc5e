package aya.cli;

import aya.generation.ChatFixture;
import aya.server.ServeBench;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/** {@code aya serve} and {@code aya bench-serve} as commands: flags, the ready line, SIGTERM, the benchmark's counts. */
class ServeCommandTest extends CliCapture {

    @Test
    void badFlagsAreOneLineAndExit2() {
        assertEquals(2, Main.run("serve", "--model", ChatFixture.DIR.toString(), "--port", "70000"));
        assertEquals(2, Main.run("serve", "--model", ChatFixture.DIR.toString(), "--parallel", "0"));
        assertEquals(2, Main.run("serve", "--model", ChatFixture.DIR.toString(), "--quant", "q3"));
        assertEquals(2, Main.run("serve", "--model", ChatFixture.DIR.toString(), "--activations", "f8"));
        assertEquals(2, Main.run("serve", "--model", ChatFixture.DIR.toString(), "--api-key", ""));
        assertEquals(2, Main.run("serve", "--model", ChatFixture.DIR.toString(), "--port", "eighty"));
        assertEquals(2, Main.run("bench-serve", "--model", ChatFixture.DIR.toString(), "--clients", "1,x"));
        assertEquals(2, Main.run("bench-serve", "--url", "ftp://host/", "--clients", "1"));
        List<String> lines = stderr().lines().toList();
        assertEquals(8, lines.size(), stderr());
        for (String l : lines) assertTrue(l.startsWith("aya: "), l);
    }

    @Test
    void benchServeReportsEveryClientCount() throws Exception {
        assertEquals(0, Main.run("bench-serve", "--model", ChatFixture.DIR.toString(), "--threads", "1", "--context", "128",
                "--clients", "1,3", "--gen-tokens", "5", "--prompt-tokens", "7", "--rounds", "2", "--json"), stderr());
        JsonNode results = new ObjectMapper().readTree(stdout());
        assertEquals(2, results.size());
        for (int i = 0; i < 2; i++) {
            JsonNode r = results.get(i);
            int clients = i == 0 ? 1 : 3;
            assertEquals(clients, r.get("clients").asInt());
            assertEquals(clients * 2, r.get("requests").asInt());
            assertEquals(clients * 2 * 5, r.get("tokens").asInt(), "ignore_eos: exactly --gen-tokens per request");
            assertTrue(r.get("aggregateTokensPerSecond").asDouble() > 0);
            assertTrue(r.get("ttftP95Ms").asDouble() >= r.get("ttftP50Ms").asDouble());
        }
    }

    @Test
    void percentilesAreNearestRank() {
        double[] v = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
        assertEquals(5, ServeBench.percentile(v, 50));
        assertEquals(10, ServeBench.percentile(v, 95));
        assertEquals(7, ServeBench.percentile(new double[] {7}, 95));
    }

    @Test
    void sigtermEndsTheStreamInFlightAndExits0(@TempDir Path tmp) throws Exception {
        Path model = CtrlCTest.longModel(tmp);
        try (ChildCli child = ChildCli.start("serve", "--model", model.toString(), "--backend", CtrlCTest.backend(),
                "--threads", "1", "--port", "0", "--context", "200000")) {
            child.awaitStdout(s -> s.contains("listening on http://"), 120, "the ready line");
            Matcher m = Pattern.compile("listening on (http://\\S+)").matcher(child.stdout());
            assertTrue(m.find());
            URI base = URI.create(m.group(1));
            assertEquals(1, child.stdout().lines().count(), "one line when ready");
            HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
            assertEquals(200, http.send(HttpRequest.newBuilder(base.resolve("/health")).GET().build(),
                    HttpResponse.BodyHandlers.ofString()).statusCode());
            // a stream that would run for minutes
            CompletableFuture<HttpResponse<String>> stream = http.sendAsync(HttpRequest.newBuilder(base.resolve("/v1/completions"))
                    .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"Once\", \"stream\": true, \"ignore_eos\": true, "
                            + "\"max_tokens\": 190000}")).build(), HttpResponse.BodyHandlers.ofString());
            Thread.sleep(1000);
            long sent = System.nanoTime();
            // kill -TERM, not Process.destroy(): destroy() also closes this side of the child's stdout and stderr
            Process kill = new ProcessBuilder("kill", "-TERM", Long.toString(child.process.pid())).inheritIO().start();
            assertTrue(kill.waitFor(10, TimeUnit.SECONDS) && kill.exitValue() == 0, "kill -TERM");
            assertEquals(0, child.exitCode(30), child.stderr());
            assertTrue(System.nanoTime() - sent < TimeUnit.SECONDS.toNanos(15), "exits within seconds");
            HttpResponse<String> r = stream.get(10, TimeUnit.SECONDS);
            assertEquals(200, r.statusCode());
            assertTrue(r.body().endsWith("data: [DONE]\n\n"), "the stream in flight ended cleanly");
            assertTrue(r.body().contains("\"finish_reason\":\"stop\""), "with a final chunk");
            List<String> lines = child.stderrLines();
            assertEquals(List.of("aya: stopping: finishing the requests in flight", "aya: stopped"), lines, child.stderr());
        }
    }
}
