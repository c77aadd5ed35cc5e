package aya.tokenizer;

import aya.AyaException;
import aya.config.GgufMetadata;
import aya.weights.GgufFile;
import aya.weights.GgufFixtures;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The tokenizer and chat template of a GGUF made by llama.cpp's converter from the Tiny-Aya-structured fixture
 * tokenizer (src/test/resources/tokenizer/aya): HF tokenizers' ids and decodes on the whole corpus recorded for that
 * tokenizer.json, and transformers' chat renders and ids.
 */
class GgufTokenizerTest {

    static GgufMetadata metadata(Path file) {
        return new GgufMetadata(file.toString(), GgufFile.readMetadata(file));
    }

    static final GgufMetadata TINY = metadata(GgufFixtures.TINY_BF16);

    @Test
    void idsAndDecodesEqualHfTokenizersOnTheModelsTokenizerJson() throws IOException {
        Tokenizer tok = GgufTokenizer.tokenizer(TINY);
        assertEquals(Tokenizer.load(TokenizerParityTest.FIXTURES.resolve("aya/tokenizer.json")).vocabSize(), tok.vocabSize(),
                "the converter's [PAD] fillers up to 2048 rows are not tokens, as in tokenizer.json");
        TokenizerParityTest.assertEncodeAndDecodeMatchHf(tok, "aya");
        TokenizerParityTest.assertDecodeOfRandomIdsMatchesHf(tok, "aya");
    }

    @Test
    void controlTokensAreSpecialAndMatchedInRawText() {
        Tokenizer tok = GgufTokenizer.tokenizer(TINY);
        Tokenizer hf = Tokenizer.load(TokenizerParityTest.FIXTURES.resolve("aya/tokenizer.json"));
        for (int id = 0; id < hf.vocabSize(); id++) {
            assertEquals(hf.isSpecial(id), tok.isSpecial(id), "token " + id + " " + hf.token(id));
            assertEquals(hf.token(id), tok.token(id), "token " + id);
        }
        assertEquals(2000, tok.tokenId("<|END_RESPONSE|>"));
    }

    @Test
    void chatTemplateRendersAndTokenizesLikeTransformers() throws IOException {
        Tokenizer tok = GgufTokenizer.tokenizer(TINY);
        ChatTemplate template = GgufTokenizer.chatTemplate(TINY, tok).orElseThrow();
        int checked = 0;
        for (JsonNode row : TokenizerParityTest.readJsonl(TokenizerParityTest.FIXTURES.resolve("chat_cases.jsonl"))) {
            if (!row.get("model").asText().equals("aya") || row.has("template") || row.has("error")) continue;
            List<ChatTemplate.Message> messages = new ArrayList<>();
            for (JsonNode m : row.get("messages")) messages.add(new ChatTemplate.Message(m.get("role").asText(), m.get("content").asText()));
            boolean gen = row.get("add_generation_prompt").asBoolean();
            String name = row.get("conversation").asText();
            assertEquals(row.get("rendered").asText(), template.render(messages, gen), name);
            assertArrayEquals(TokenizerParityTest.ints(row.get("safe_ids")), template.encodeChat(messages, gen), name);
            checked++;
        }
        assertTrue(checked >= 10, "checked " + checked);
    }

    static String error(Map<String, Object> values) {
        AyaException e = assertThrows(AyaException.class, () -> GgufTokenizer.tokenizer(new GgufMetadata("t.gguf", values)));
        assertEquals(-1, e.getMessage().indexOf('\n'));
        return e.getMessage();
    }

    @Test
    void refusesUnknownPreTokenizersAndModels() {
        Map<String, Object> m = new HashMap<>(TINY.values());
        m.put("tokenizer.ggml.pre", "qwen2");
        assertEquals("t.gguf: tokenizer.ggml.pre is 'qwen2', a pre-tokenizer this engine does not know (known: tiny_aya)", error(m));
        m.remove("tokenizer.ggml.pre");
        assertTrue(error(m).contains("tokenizer.ggml.pre is 'null'"));
        m.put("tokenizer.ggml.pre", "tiny_aya");
        m.put("tokenizer.ggml.model", "llama");
        assertTrue(error(m).contains("tokenizer.ggml.model is 'llama', this engine reads only 'gpt2'"));
        m.remove("tokenizer.ggml.model");
        assertTrue(error(m).contains("no tokenizer in the file"));
        m.put("tokenizer.ggml.model", "gpt2");
        m.put("tokenizer.ggml.merges", List.of("ab"));
        assertTrue(error(m).contains("merges entry 0 'ab' is not two tokens"));
        m.put("tokenizer.ggml.merges", TINY.values().get("tokenizer.ggml.merges"));
        m.put("tokenizer.ggml.token_type", List.of(1L));
        assertTrue(error(m).contains("token_type has 1 entries for 2048 tokens"));
    }
}
