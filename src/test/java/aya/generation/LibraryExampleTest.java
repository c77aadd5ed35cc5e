package aya.generation;

import aya.tokenizer.ChatTemplate.Message;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The README's library example, runnable: load once, open a session, chat twice (the second turn reuses the KV
 * cache), stream the text through a callback. Checked against transformers' replies for the tiny chat checkpoint.
 * The README has "CohereLabs/tiny-aya-global" for {@code dir}, Options.DEFAULT, 256 tokens and System.out.
 */
class LibraryExampleTest {

    @Test
    void readmeExample() {
        Path dir = ChatFixture.DIR;
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
        List<String> replies = new ArrayList<>();

        // --- README example starts here
        try (AyaModel model = AyaModel.load(dir, AyaModel.Options.DEFAULT.withBackend("java").withThreads(1).withLog(null));
             Session session = model.newSession()) {
            GenerationSettings settings = model.settings().temperature(0).seed(42).maxTokens(24).build();

            List<Message> chat = new ArrayList<>(List.of(Message.system("You are a helpful assistant.")));
            for (String user : List.of("Translate to French: good morning", "Thank you")) {
                chat.add(Message.user(user));
                GenerationResult reply = session.chat(chat, settings, TokenListener.printTo(out)); // streamed
                chat.add(Message.assistant(reply.text()));                 // the next turn reuses the KV cache
                replies.add(reply.text());
            }
        }
        // --- README example ends here

        assertEquals(List.of(ChatFixture.testCase("chat").get("text").asText(),
                ChatFixture.testCase("chat_turn2").get("text").asText()), replies);
        assertEquals(String.join("", replies), bytes.toString(StandardCharsets.UTF_8));
    }
}
