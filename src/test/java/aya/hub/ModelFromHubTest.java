package aya.hub;

import aya.generation.AyaModel;
import aya.generation.ChatFixture;
import aya.generation.GenerationResult;
import aya.generation.GenerationSettings;
import aya.generation.Session;
import aya.generation.TokenListener;
import aya.tokenizer.ChatTemplate.Message;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** A repo id given to the library: the files come from a (loopback) hub into the HF cache, then it chats. */
class ModelFromHubTest {

    @Test
    void aRepoIdIsDownloadedThenUsedFromTheCache(@TempDir Path cache) throws IOException {
        try (FakeHub hub = new FakeHub()) {
            FakeHub.Repo repo = hub.repo("Org/TinyChat");
            for (String f : List.of("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                    "chat_template.jinja")) {
                repo.file(f, Files.readAllBytes(ChatFixture.DIR.resolve(f)));
            }
            repo.lfsFile("model.safetensors", Files.readAllBytes(ChatFixture.DIR.resolve("model.safetensors")));
            ByteArrayOutputStream log = new ByteArrayOutputStream();
            ModelLocator locator = new ModelLocator(new HubSettings(cache, hub.endpoint(), null, cache.resolve("token"), false),
                    new PrintStream(log, true, StandardCharsets.UTF_8), false);

            JsonNode c = ChatFixture.testCase("chat");
            for (int run = 0; run < 2; run++) {
                int before = hub.requests.size();
                try (AyaModel model = AyaModel.load("Org/TinyChat", new AyaModel.Options("java", 1, null), locator);
                     Session s = model.newSession()) {
                    assertTrue(model.directory().startsWith(cache), model.directory().toString());
                    GenerationResult r = s.chat(List.of(new Message("system", c.get("system").asText()),
                            new Message("user", c.get("user").asText())), GenerationSettings.greedy(24), TokenListener.NONE);
                    assertEquals(c.get("text").asText(), r.text());
                }
                if (run == 1) assertEquals(before, hub.requests.size(), "second load: from the cache, no request");
            }
        }
    }
}
