package aya.server;

import aya.generation.AyaModel;
import aya.generation.ChatFixture;
import aya.generation.GenerationResult;
import aya.generation.GenerationSettings;
import aya.generation.Scheduler;
import aya.generation.Session;
import aya.generation.TokenListener;
import aya.tokenizer.ChatTemplate;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.JsonValue;
import com.openai.core.http.StreamResponse;
import com.openai.errors.BadRequestException;
import com.openai.errors.UnauthorizedException;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.chat.completions.ChatCompletionStreamOptions;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionCreateParams;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Collectors;

import static aya.generation.ChatFixture.ints;
import static aya.generation.ChatFixture.testCase;
import static org.junit.jupiter.api.Assertions.*;

/**
 * {@code aya serve}'s HTTP API against the official OpenAI Java SDK (and raw HTTP for what the SDK cannot send), on
 * the tiny chat checkpoint: answers equal to what {@code ./aya generate} makes (the same Session path) and to the
 * transformers references, streams equal to plain answers, concurrency, every error class, authentication.
 */
class ApiServerTest {

    static final int CONTEXT = 4096;

    @TempDir
    static Path tmp;
    static AyaModel model;
    static Scheduler scheduler;
    static ApiServer server;
    static OpenAIClient openai;
    static final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    static final ObjectMapper json = new ObjectMapper();

    @BeforeAll
    static void start() throws IOException {
        model = ServerFixture.load(ServerFixture.longModel(tmp));
        scheduler = new Scheduler(model, new Scheduler.Options(4, CONTEXT, 64, 64L << 20, 512));
        server = ServerFixture.serve(model, scheduler, CONTEXT, null);
        openai = client(server, "unused");
    }

    @AfterAll
    static void stop() {
        if (server != null) server.close();
        if (scheduler != null) scheduler.close();
        if (model != null) model.close();
    }

    static OpenAIClient client(ApiServer s, String key) {
        return OpenAIOkHttpClient.builder().baseUrl(s.url() + "/v1").apiKey(key).maxRetries(0).build();
    }

    /** What ./aya generate prints for this conversation at temperature 0: the same Session.chat path. */
    static GenerationResult generateReference(List<ChatTemplate.Message> messages, int maxTokens) {
        try (Session s = model.newSession(CONTEXT)) {
            return s.chat(messages, GenerationSettings.greedy(maxTokens), TokenListener.NONE);
        }
    }

    static ChatCompletionCreateParams chatParams(String system, String user, int maxTokens) {
        ChatCompletionCreateParams.Builder b = ChatCompletionCreateParams.builder().model("tiny-chat").temperature(0)
                .maxCompletionTokens(maxTokens);
        if (system != null) b.addSystemMessage(system);
        return b.addUserMessage(user).build();
    }

    @Test
    void chatAnswerEqualsGenerateAndTransformers() {
        JsonNode c = testCase("chat");
        ChatCompletion answer = openai.chat().completions().create(chatParams(c.get("system").asText(), c.get("user").asText(), 64));
        String text = answer.choices().get(0).message().content().orElseThrow();
        GenerationResult reference = generateReference(List.of(new ChatTemplate.Message("system", c.get("system").asText()),
                new ChatTemplate.Message("user", c.get("user").asText())), 64);
        assertEquals(reference.text(), text, "./aya generate's text");
        assertEquals(c.get("text").asText(), text, "transformers' greedy reply");
        assertEquals(ChatCompletion.Choice.FinishReason.STOP, answer.choices().get(0).finishReason(), "ended on an end token");
        assertEquals(ints(c.get("prompt_ids")).length, answer.usage().orElseThrow().promptTokens());
        assertEquals(ChatFixture.replyIds(c).length, answer.usage().orElseThrow().completionTokens());
        assertEquals("chat.completion", answer._object_().asString().orElseThrow());
        assertTrue(answer.id().startsWith("chatcmpl-"), answer.id());
        JsonValue timings = answer._additionalProperties().get("timings");
        assertNotNull(timings, "llama-server's timings extension");
        assertTrue(timings.toString().contains("first_token_ms"), timings.toString());
    }

    @Test
    void streamedChatEqualsThePlainAnswer() {
        JsonNode c = testCase("chat_no_system");
        ChatCompletionCreateParams params = chatParams(null, c.get("user").asText(), 64).toBuilder()
                .streamOptions(ChatCompletionStreamOptions.builder().includeUsage(true).build()).build();
        StringBuilder text = new StringBuilder();
        List<ChatCompletionChunk> chunks = new ArrayList<>();
        try (StreamResponse<ChatCompletionChunk> stream = openai.chat().completions().createStreaming(params)) {
            stream.stream().forEach(chunk -> {
                chunks.add(chunk);
                chunk.choices().forEach(ch -> ch.delta().content().ifPresent(text::append));
            });
        }
        assertEquals(c.get("text").asText(), text.toString(), "transformers' reply, streamed");
        assertEquals(generateReference(List.of(new ChatTemplate.Message("user", c.get("user").asText())), 64).text(), text.toString());
        assertEquals(Optional.of(ChatCompletionChunk.Choice.Delta.Role.ASSISTANT), chunks.get(0).choices().get(0).delta().role(),
                "a role delta first");
        ChatCompletionChunk finish = chunks.get(chunks.size() - 2);
        assertEquals(Optional.of(ChatCompletionChunk.Choice.FinishReason.STOP), finish.choices().get(0).finishReason());
        ChatCompletionChunk usage = chunks.getLast();
        assertTrue(usage.choices().isEmpty(), "the usage chunk has no choices");
        assertEquals(ints(c.get("prompt_ids")).length, usage.usage().orElseThrow().promptTokens());
        assertEquals(ChatFixture.replyIds(c).length, usage.usage().orElseThrow().completionTokens());
    }

    @Test
    void rawStreamEndsWithDoneAndEveryEventIsJson() throws Exception {
        String body = "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Hi\"}, "
                + "{\"type\": \"text\", \"text\": \" there\"}]}], \"stream\": true, \"temperature\": 0, \"max_tokens\": 12}";
        HttpResponse<String> r = post("/v1/chat/completions", body, null);
        assertEquals(200, r.statusCode());
        assertTrue(r.headers().firstValue("Content-Type").orElseThrow().startsWith("text/event-stream"));
        List<String> events = Arrays.stream(r.body().split("\n\n")).toList();
        assertEquals("data: [DONE]", events.getLast());
        StringBuilder text = new StringBuilder();
        for (String e : events.subList(0, events.size() - 1)) {
            assertTrue(e.startsWith("data: "), e);
            JsonNode chunk = json.readTree(e.substring(6));
            assertEquals("chat.completion.chunk", chunk.get("object").asText());
            text.append(chunk.at("/choices/0/delta/content").asText(""));
        }
        // text parts are joined into one message, as the template sees a string
        String expected = generateReference(List.of(new ChatTemplate.Message("user", "Hi there")), 12).text();
        assertEquals(expected, text.toString());
    }

    @Test
    void completionsTakeARawPromptOrTokenIds() {
        JsonNode c = testCase("raw_long"); // transformers' greedy continuation, 40 tokens through end tokens
        int n = c.get("ids").size();
        CompletionCreateParams text = CompletionCreateParams.builder().model("tiny-chat").prompt(c.get("prompt").asText())
                .maxTokens(n).temperature(0).putAdditionalBodyProperty("ignore_eos", JsonValue.from(true)).build();
        Completion answer = openai.completions().create(text);
        assertEquals(c.get("text").asText(), answer.choices().get(0).text());
        assertEquals(n, answer.usage().orElseThrow().completionTokens());
        assertEquals(com.openai.models.completions.CompletionChoice.FinishReason.LENGTH, answer.choices().get(0).finishReason());
        assertTrue(answer.id().startsWith("cmpl-"), answer.id());

        List<Long> ids = Arrays.stream(ints(c.get("prompt_ids"))).mapToObj(i -> (long) i).toList();
        Completion byIds = openai.completions().create(text.toBuilder().promptOfArrayOfTokens(ids).build());
        assertEquals(c.get("text").asText(), byIds.choices().get(0).text());
    }

    @Test
    void eightConcurrentStreamsEqualTheSameRequestsOneByOne() throws Exception {
        List<ChatCompletionCreateParams> requests = new ArrayList<>();
        for (int i = 0; i < 8; i++) requests.add(chatParams(i % 2 == 0 ? "Be brief." : null, "Question number " + i + "?", 10 + 3 * i));
        List<String> alone = new ArrayList<>();
        for (ChatCompletionCreateParams p : requests) alone.add(openai.chat().completions().create(p).choices().get(0).message().content().orElse(""));
        List<Future<String>> streams = new ArrayList<>();
        try (ExecutorService pool = Executors.newFixedThreadPool(8)) {
            for (ChatCompletionCreateParams p : requests) {
                streams.add(pool.submit(() -> {
                    try (StreamResponse<ChatCompletionChunk> s = openai.chat().completions().createStreaming(p)) {
                        return s.stream().flatMap(ch -> ch.choices().stream()).map(ch -> ch.delta().content().orElse(""))
                                .collect(Collectors.joining());
                    }
                }));
            }
            for (int i = 0; i < 8; i++) assertEquals(alone.get(i), streams.get(i).get(), "request " + i);
        }
        assertEquals(8, alone.stream().distinct().count(), "eight different answers (the prompts differ)");
    }

    @Test
    void unspecifiedSamplingFollowsGenerationConfigWithTheGivenSeed() {
        // generation_config.json: do_sample, temperature 0.7, top_p 0.9; the same seed gives the same text
        ChatCompletionCreateParams p = ChatCompletionCreateParams.builder().model("x").addUserMessage("Tell me a story")
                .maxCompletionTokens(30).seed(1234).putAdditionalBodyProperty("ignore_eos", JsonValue.from(true)).build();
        String first = openai.chat().completions().create(p).choices().get(0).message().content().orElseThrow();
        String second = openai.chat().completions().create(p).choices().get(0).message().content().orElseThrow();
        assertEquals(first, second);
        String greedy = openai.chat().completions().create(p.toBuilder().temperature(0).build()).choices().get(0).message().content().orElseThrow();
        assertNotEquals(greedy, first, "sampled at the model's temperature, not greedy");
    }

    @Test
    void stopStringsCutTheAnswer() {
        JsonNode c = testCase("raw_long");
        String full = c.get("text").asText();
        String stop = full.substring(10, 13);
        CompletionCreateParams p = CompletionCreateParams.builder().model("x").prompt(c.get("prompt").asText())
                .maxTokens(c.get("ids").size()).temperature(0).stop(stop)
                .putAdditionalBodyProperty("ignore_eos", JsonValue.from(true)).build();
        Completion answer = openai.completions().create(p);
        assertEquals(full.substring(0, full.indexOf(stop)), answer.choices().get(0).text());
        assertEquals(com.openai.models.completions.CompletionChoice.FinishReason.STOP, answer.choices().get(0).finishReason());
    }

    // ---- errors ----

    @Test
    void badRequestsGet400InOpenAisShape() throws Exception {
        String user = "{\"role\": \"user\", \"content\": \"hi\"}";
        assertError(400, "malformed JSON", post("/v1/chat/completions", "{\"messages\": [", null));
        assertError(400, "must be a JSON object", post("/v1/chat/completions", "[1, 2]", null));
        assertError(400, "'temperature' must be a number", post("/v1/chat/completions", "{\"messages\": [" + user + "], \"temperature\": \"hot\"}", null));
        assertError(400, "'stream' must be true or false", post("/v1/chat/completions", "{\"messages\": [" + user + "], \"stream\": 1}", null));
        assertError(400, "is not one of system, user, assistant",
                post("/v1/chat/completions", "{\"messages\": [{\"role\": \"wizard\", \"content\": \"hi\"}]}", null));
        assertError(400, "'n' must be 1", post("/v1/chat/completions", "{\"messages\": [" + user + "], \"n\": 2}", null));
        assertError(400, "'max_tokens' must be at least 1", post("/v1/chat/completions", "{\"messages\": [" + user + "], \"max_tokens\": 0}", null));
        assertError(400, "'messages' is empty", post("/v1/chat/completions", "{\"messages\": []}", null));
        assertError(400, "top-p must be between 0 and 1", post("/v1/chat/completions", "{\"messages\": [" + user + "], \"top_p\": 2}", null));
        assertError(400, "'stop' must be a string or an array of strings", post("/v1/completions", "{\"prompt\": \"a\", \"stop\": 3}", null));
        assertError(400, "must be a token id", post("/v1/completions", "{\"prompt\": [1, 99999]}", null));
        assertError(400, "'prompt' must be a string or an array", post("/v1/completions", "{\"prompt\": [\"a\", \"b\"]}", null));
        String tooLong = "{\"prompt\": [" + "5,".repeat(CONTEXT) + "5]}";
        assertError(400, "more than the context of " + CONTEXT, post("/v1/completions", tooLong, null));

        // the SDK sees the same as an exception with the status, type and message
        BadRequestException e = assertThrows(BadRequestException.class, () -> openai.chat().completions()
                .create(chatParams(null, "hi", 5).toBuilder().n(3).build()));
        assertEquals(Optional.of("invalid_request_error"), e.type());
        assertEquals(Optional.of("n"), e.param());
        assertTrue(e.getMessage().contains("'n' must be 1"), e.getMessage());
    }

    @Test
    void unknownPathsWrongMethodsAndHugeBodies() throws Exception {
        assertError(404, "no endpoint /v1/nothing", send(HttpRequest.newBuilder(uri("/v1/nothing")).GET()));
        HttpResponse<String> r = send(HttpRequest.newBuilder(uri("/v1/chat/completions")).GET());
        assertError(405, "takes POST, not GET", r);
        assertEquals(Optional.of("POST"), r.headers().firstValue("Allow"));
        byte[] huge = new byte[ApiServer.MAX_BODY_BYTES + 10];
        Arrays.fill(huge, (byte) ' ');
        assertError(413, "larger than", send(HttpRequest.newBuilder(uri("/v1/completions"))
                .POST(HttpRequest.BodyPublishers.ofByteArray(huge))));
        // the same without a Content-Length (chunked): the body is read up to the limit only
        assertError(413, "larger than", send(HttpRequest.newBuilder(uri("/v1/completions"))
                .POST(HttpRequest.BodyPublishers.ofInputStream(() -> new java.io.ByteArrayInputStream(huge)))));
    }

    @Test
    void theApiKeyIsRequiredWhenSet() throws Exception {
        try (ApiServer locked = ServerFixture.serve(model, scheduler, CONTEXT, "s3cret-key")) {
            URI base = URI.create(locked.url());
            HttpResponse<String> none = http.send(HttpRequest.newBuilder(base.resolve("/v1/models")).GET().build(),
                    HttpResponse.BodyHandlers.ofString());
            assertError(401, "missing API key", none);
            HttpResponse<String> wrong = http.send(HttpRequest.newBuilder(base.resolve("/v1/models"))
                    .header("Authorization", "Bearer s3cret-kez").GET().build(), HttpResponse.BodyHandlers.ofString());
            assertError(401, "invalid API key", wrong);
            assertThrows(UnauthorizedException.class, () -> client(locked, "nope").models().list());
            assertEquals("tiny-chat", client(locked, "s3cret-key").models().list().data().getFirst().id());
            HttpResponse<String> health = http.send(HttpRequest.newBuilder(base.resolve("/health")).GET().build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(200, health.statusCode(), "/health needs no key (load balancers)");
        }
    }

    @Test
    void healthIs503UntilTheModelIsReady() throws Exception {
        try (ApiServer loading = ApiServer.start(new ApiServer.Config("127.0.0.1", 0, null, "x"), null)) {
            URI base = URI.create(loading.url());
            assertError(503, "loading", http.send(HttpRequest.newBuilder(base.resolve("/health")).GET().build(), HttpResponse.BodyHandlers.ofString()));
            assertError(503, "loading", http.send(HttpRequest.newBuilder(base.resolve("/v1/completions"))
                    .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"a\"}")).build(), HttpResponse.BodyHandlers.ofString()));
            loading.ready(model, scheduler, CONTEXT);
            HttpResponse<String> ok = http.send(HttpRequest.newBuilder(base.resolve("/health")).GET().build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, ok.statusCode());
            assertEquals("ok", json.readTree(ok.body()).get("status").asText());
            loading.drain();
            assertError(503, "shutting down", http.send(HttpRequest.newBuilder(base.resolve("/health")).GET().build(), HttpResponse.BodyHandlers.ofString()));
        }
    }

    @Test
    void tokenizeAndDetokenizeAsLlamaServer() throws Exception {
        JsonNode c = testCase("raw");
        String prompt = c.get("prompt").asText();
        HttpResponse<String> r = post("/tokenize", json.createObjectNode().put("content", prompt).put("add_special", true).toString(), null);
        assertEquals(200, r.statusCode(), r.body());
        assertArrayEquals(ints(c.get("prompt_ids")), ints(json.readTree(r.body()).get("tokens")), "HF tokenizers' ids, BOS included");
        HttpResponse<String> plain = post("/tokenize", json.createObjectNode().put("content", prompt).toString(), null);
        int[] ids = ints(json.readTree(plain.body()).get("tokens"));
        assertArrayEquals(Arrays.copyOfRange(ints(c.get("prompt_ids")), 1, ids.length + 1), ids, "add_special defaults to false");
        HttpResponse<String> back = post("/detokenize", "{\"tokens\": " + Arrays.toString(ids) + "}", null);
        assertEquals(prompt, json.readTree(back.body()).get("content").asText());
        HttpResponse<String> pieces = post("/tokenize", "{\"content\": \"Grüße\", \"with_pieces\": true}", null);
        StringBuilder joined = new StringBuilder();
        for (JsonNode p : json.readTree(pieces.body()).get("tokens")) joined.append(p.get("piece").asText());
        assertEquals("Grüße", joined.toString());
        assertError(400, "'tokens' must be an array", post("/detokenize", "{\"tokens\": 5}", null));
    }

    @Test
    void metricsCountRequestsTokensAndSteps() throws Exception {
        long before = completionTokens();
        ChatCompletion a = openai.chat().completions().create(chatParams(null, "Count me", 7));
        post("/v1/chat/completions", "{\"messages\": [{\"role\": \"nobody\", \"content\": \"x\"}]}", null);
        HttpResponse<String> m = send(HttpRequest.newBuilder(uri("/metrics")).GET());
        assertEquals(200, m.statusCode());
        assertTrue(m.headers().firstValue("Content-Type").orElseThrow().startsWith("text/plain"));
        String text = m.body();
        assertTrue(metric(text, "aya_requests_total{endpoint=\"/v1/chat/completions\",status=\"200\"}") >= 1, text);
        assertTrue(metric(text, "aya_requests_total{endpoint=\"/v1/chat/completions\",status=\"400\"}") >= 1, text);
        assertTrue(metric(text, "aya_completion_tokens_total") >= before + a.usage().orElseThrow().completionTokens(), text);
        for (String name : List.of("aya_prompt_tokens_total", "aya_sequences_active", "aya_sequences_queued", "aya_batch_rows_mean",
                "aya_steps_total", "aya_predicted_tokens_per_second")) {
            assertTrue(text.contains("\n" + name + " "), name + " in\n" + text);
        }
        assertTrue(metric(text, "aya_predicted_tokens_per_second") > 0);
    }

    static long completionTokens() {
        return scheduler.stats().completionTokens();
    }

    /** The value of one sample line of Prometheus text. */
    static double metric(String text, String name) {
        return text.lines().filter(l -> l.startsWith(name + " ")).mapToDouble(l -> Double.parseDouble(l.substring(name.length() + 1)))
                .findFirst().orElseThrow(() -> new AssertionError(name + " not in\n" + text));
    }

    // ---- helpers ----

    static URI uri(String path) {
        return URI.create(server.url() + path);
    }

    static HttpResponse<String> post(String path, String body, String key) throws IOException, InterruptedException {
        HttpRequest.Builder b = HttpRequest.newBuilder(uri(path)).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body));
        if (key != null) b.header("Authorization", "Bearer " + key);
        return send(b);
    }

    static HttpResponse<String> send(HttpRequest.Builder b) throws IOException, InterruptedException {
        return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    /** An error in OpenAI's shape with this status and a message containing {@code fragment}; never a stack trace. */
    static void assertError(int status, String fragment, HttpResponse<String> r) throws IOException {
        assertEquals(status, r.statusCode(), r.body());
        JsonNode error = json.readTree(r.body()).get("error");
        assertNotNull(error, r.body());
        for (String field : List.of("message", "type", "param", "code")) assertTrue(error.has(field), field + " in " + r.body());
        assertTrue(error.get("message").asText().contains(fragment), r.body());
        assertFalse(r.body().contains("\tat ") || r.body().contains("Exception"), "no stack trace: " + r.body());
    }
}
