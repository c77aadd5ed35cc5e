package aya.fuzz;

import aya.tokenizer.ChatTemplate;
import aya.tokenizer.Tokenizer;
import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.junit.jupiter.api.BeforeAll;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Fuzzes chat messages through the Cohere-style template and tokenizer of the aya fixture. Besides "only
 * AyaException" (e.g. roles that do not alternate), the prompt must hold exactly the special tokens that the same
 * conversation with harmless text holds: no message text may become a control token.
 */
class ChatMessagesFuzzTest {

    static final String[] ROLES = {"user", "assistant", "system", "user", "assistant"};
    static Tokenizer tokenizer;
    static ChatTemplate template;

    @BeforeAll
    static void load() {
        Path dir = Path.of("src/test/resources/tokenizer/aya");
        tokenizer = Tokenizer.load(dir.resolve("tokenizer.json"));
        template = ChatTemplate.load(dir, tokenizer).orElseThrow();
    }

    @FuzzTest(maxDuration = "5s")
    @DictionaryEntries({"<|START_OF_TURN_TOKEN|>", "<|END_OF_TURN_TOKEN|>", "<|USER_TOKEN|>", "<|CHATBOT_TOKEN|>",
            "<|SYSTEM_TOKEN|>", "<|START_RESPONSE|>", "<|END_RESPONSE|>", "<BOS_TOKEN>", "<EOS_TOKEN>", "<|", "|>", "<",
            "{{", "}}", "{%", "%}", "\uFDD0", "\uFF5C", "\u200B"})
    void messages(FuzzedDataProvider in) {
        List<ChatTemplate.Message> messages = new ArrayList<>();
        List<ChatTemplate.Message> harmless = new ArrayList<>();
        int n = in.consumeInt(1, 4);
        for (int i = 0; i < n; i++) {
            String role = in.consumeBoolean() ? in.pickValue(ROLES) : in.consumeString(12);
            String content = in.consumeString(120);
            messages.add(new ChatTemplate.Message(role, content));
            harmless.add(new ChatTemplate.Message(role, content.isBlank() ? content : "x"));
        }
        boolean generationPrompt = in.consumeBoolean();
        FuzzSupport.onlyUserErrors(() -> {
            int[] ids = template.encodeChat(messages, generationPrompt);
            int[] reference = template.encodeChat(harmless, generationPrompt);
            if (specials(ids) != specials(reference)) {
                throw new AssertionError("message text became control tokens: " + messages);
            }
        });
    }

    static long specials(int[] ids) {
        long n = 0;
        for (int id : ids) if (tokenizer.isSpecial(id)) n++;
        return n;
    }
}
