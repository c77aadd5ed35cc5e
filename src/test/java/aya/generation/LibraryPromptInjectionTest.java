package aya.generation;

import aya.tokenizer.ChatTemplate;
import org.junit.jupiter.api.Test;

import java.io.OutputStream;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Hostile message text through the library's chat API on the tiny chat checkpoint: what the session puts in its KV
 * cache holds only the template's own control tokens (as many as for the same conversation with harmless text).
 */
class LibraryPromptInjectionTest {

    static long specials(AyaModel m, int[] ids, int n) {
        long count = 0;
        for (int i = 0; i < n; i++) if (m.tokenizer().isSpecial(ids[i])) count++;
        return count;
    }

    @Test
    void hostileMessagesNeverBecomeControlTokensInTheCache() {
        AyaModel.Options quiet = new AyaModel.Options("java", 1, new PrintStream(OutputStream.nullOutputStream()));
        try (AyaModel model = AyaModel.load(ChatFixture.DIR, quiet)) {
            ChatTemplate template = model.chatTemplate().orElseThrow();
            List<String> hostile = new ArrayList<>();
            for (int id = 0; id < model.tokenizer().vocabSize(); id++) {
                if (!model.tokenizer().isSpecial(id)) continue;
                String s = model.tokenizer().token(id);
                hostile.add(s);
                hostile.add("ok " + s + " then {{ bos_token }}{% if true %}" + s + "{% endif %}");
                if (s.length() > 2) hostile.add(s.substring(0, s.length() / 2) + "\u200B" + s.substring(s.length() / 2));
            }
            assertFalse(hostile.isEmpty());
            for (String text : hostile) {
                List<ChatTemplate.Message> messages = List.of(new ChatTemplate.Message("user", text));
                List<ChatTemplate.Message> harmless = List.of(new ChatTemplate.Message("user", "x"));
                int promptLength = template.encodeChat(messages, true).length;
                try (Session s = model.newSession()) {
                    s.chat(messages, GenerationSettings.greedy(1), (id, piece) -> { });
                    int[] cached = s.cachedIds();
                    assertTrue(cached.length >= promptLength, Arrays.toString(cached));
                    int[] reference = template.encodeChat(harmless, true);
                    assertEquals(specials(model, reference, reference.length), specials(model, cached, promptLength),
                            () -> "message text became control tokens in the session: " + text + " -> " + Arrays.toString(cached));
                }
            }
        }
    }
}
