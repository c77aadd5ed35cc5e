package aya.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Streaming decode gives HF's full decode in pieces and never emits half a character. */
class StreamingDecoderTest {

    @ParameterizedTest
    @ValueSource(strings = {"aya", "gpt2", "llama3", "sp", "sp_legacy", "misc_meta"})
    void streamedTextEqualsHfDecodeAndNeverSplitsACharacter(String name) throws IOException {
        Tokenizer tok = Tokenizer.load(TokenizerParityTest.FIXTURES.resolve(name).resolve("tokenizer.json"));
        List<JsonNode> rows = TokenizerParityTest.readJsonl(TokenizerParityTest.FIXTURES.resolve(name).resolve("encode.jsonl.gz"));
        int held = 0;
        for (JsonNode row : rows) {
            int[] ids = TokenizerParityTest.ints(row.get("ids"));
            String want = row.get("decoded").asText();  // HF decode of all ids
            StreamingDecoder stream = new StreamingDecoder(tok, false);
            StringBuilder got = new StringBuilder();
            for (int id : ids) {
                String piece = stream.accept(id);
                if (piece.isEmpty()) held++;
                // Emitted text is final: it is a prefix of the complete decode and ends on a whole character.
                got.append(piece);
                assertTrue(want.startsWith(got.toString()), () -> name + ": emitted text is not a prefix of HF's decode: " + TokenizerParityTest.show(got.toString()));
                assertFalse(!got.isEmpty() && Character.isHighSurrogate(got.charAt(got.length() - 1)), "half a surrogate pair emitted");
                if (!want.contains("\uFFFD")) assertFalse(piece.contains("\uFFFD"), "a partial UTF-8 character was emitted as U+FFFD");
            }
            got.append(stream.finish());
            assertEquals(want, got.toString(), name);
        }
        if (name.equals("aya") || name.equals("sp")) assertTrue(held > 0, "multi-token characters (emoji, byte fallback) were held at least once");
    }

    @ParameterizedTest
    @ValueSource(strings = {"aya", "sp"})
    void incompleteCharacterIsHeldThenFlushedAsReplacement(String name) {
        Tokenizer tok = Tokenizer.load(TokenizerParityTest.FIXTURES.resolve(name).resolve("tokenizer.json"));
        int[] ids = tok.encode("ok 👋", false);
        StreamingDecoder stream = new StreamingDecoder(tok, false);
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < ids.length - 1; i++) out.append(stream.accept(ids[i]));
        String beforeLast = out.toString();
        assertFalse(beforeLast.contains("\uFFFD"));
        // Stopping before the emoji is complete: the held bytes come out as U+FFFD, as HF's decode would give.
        String flushed = stream.finish();
        int[] partial = java.util.Arrays.copyOf(ids, ids.length - 1);
        assertEquals(tok.decode(partial), beforeLast + flushed);
    }
}
