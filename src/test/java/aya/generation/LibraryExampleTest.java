package aya.generation;

import aya.sampling.SamplerSettings;
import aya.tokenizer.ChatTemplate.Message;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The README's library example, runnable: load once, open a session, chat twice (the second turn reuses the KV
 * cache), stream the text through a callback. Checked against transformers' replies for the tiny chat checkpoint.
 */
class LibraryExampleTest {

    @Test
    void readmeExample() {
        Path dir = ChatFixture.DIR; // or a repo id: AyaModel.load("CohereLabs/tiny-aya-global", AyaModel.Options.DEFAULT)
        StringBuilder printed = new StringBuilder();
        List<String> replies = new ArrayList<>();

        // --- README example starts here
        try (AyaModel model = AyaModel.load(dir, new AyaModel.Options("java", 1, null));
             Session session = model.newSession(256)) {
            SamplerSettings greedy = model.samplerSettings(new SamplerSettings.Overrides(0f, null, null, null, null, null, 42L));
            GenerationSettings settings = new GenerationSettings(greedy, 24, List.of(), false);

            List<Message> chat = new ArrayList<>();
            chat.add(new Message("system", "You are a helpful assistant."));
            for (String user : List.of("Translate to French: good morning", "Thank you")) {
                chat.add(new Message("user", user));
                GenerationResult reply = session.chat(chat, settings, (id, text) -> printed.append(text));
                chat.add(new Message("assistant", reply.text()));
                replies.add(reply.text());
            }
        }
        // --- README example ends here

        assertEquals(List.of(ChatFixture.testCase("chat").get("text").asText(),
                ChatFixture.testCase("chat_turn2").get("text").asText()), replies);
        assertEquals(String.join("", replies), printed.toString());
    }
}
