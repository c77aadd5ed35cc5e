package aya.server;

import aya.generation.AyaModel;
import aya.generation.Scheduler;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A checkpoint without tokenizer.json (e.g. one made by init-random) serves token ids only: text endpoints answer 400
 * naming the reason (they were an internal error, 500), and /v1/completions with an array of ids still works.
 */
class ServerWithoutTokenizerTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final HttpClient HTTP = HttpClient.newHttpClient();

    @Test
    void textEndpointsAre400AndTokenIdsStillWork() throws Exception {
        try (AyaModel model = ServerFixture.load(Path.of("src/test/resources/model/f32-tied"));
             Scheduler scheduler = new Scheduler(model, new Scheduler.Options(1, 64, 4, 0, 64));
             ApiServer server = ServerFixture.serve(model, scheduler, 64, null)) {
            URI base = URI.create(server.url());
            for (String[] call : new String[][] {
                    {"/tokenize", "{\"content\": \"hello\"}", "tokenizer"},
                    {"/detokenize", "{\"tokens\": [1, 2]}", "tokenizer"},
                    {"/v1/completions", "{\"prompt\": \"hello\", \"max_tokens\": 2}", "tokenizer"},
                    {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 2}",
                            "chat template"}}) {
                HttpResponse<String> r = post(base, call[0], call[1]);
                assertEquals(400, r.statusCode(), call[0] + ": " + r.body());
                JsonNode error = JSON.readTree(r.body()).get("error");
                assertEquals("invalid_request_error", error.get("type").asText(), r.body());
                assertTrue(error.get("message").asText().contains(call[2]), r.body());
                assertFalse(r.body().contains("Exception"), "no internal error: " + r.body());
            }
            HttpResponse<String> ids = post(base, "/v1/completions", "{\"prompt\": [2, 5, 9], \"max_tokens\": 3, \"temperature\": 0, \"ignore_eos\": true}");
            assertEquals(200, ids.statusCode(), ids.body());
            assertEquals(3, JSON.readTree(ids.body()).get("usage").get("completion_tokens").asInt(), ids.body());
        }
    }

    private static HttpResponse<String> post(URI base, String path, String body) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(base.resolve(path)).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    }
}
