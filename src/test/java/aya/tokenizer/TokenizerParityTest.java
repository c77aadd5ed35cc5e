package aya.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.zip.GZIPInputStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Ids and decodes identical to HF tokenizers, for tokenizers trained by src/test/python/make_tokenizer_fixtures.py
 * in the structures of real families, over our multilingual corpus, edge cases and random strings.
 */
class TokenizerParityTest {
    static final Path FIXTURES = Path.of("src/test/resources/tokenizer");
    private static final ObjectMapper JSON = new ObjectMapper();

    static List<JsonNode> readJsonl(Path file) throws IOException {
        List<JsonNode> rows = new ArrayList<>();
        InputStream in = Files.newInputStream(file);
        if (file.toString().endsWith(".gz")) in = new GZIPInputStream(in);
        try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
            for (String line; (line = r.readLine()) != null; ) if (!line.isBlank()) rows.add(JSON.readTree(line));
        }
        return rows;
    }

    static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = array.get(i).asInt();
        return out;
    }

    @ParameterizedTest
    @ValueSource(strings = {"aya", "gpt2", "llama3", "cohere_old", "sp", "sp_legacy", "misc_split", "misc_meta", "whitespace"})
    void encodeAndDecodeMatchHf(String name) throws IOException {
        assertEncodeAndDecodeMatchHf(Tokenizer.load(FIXTURES.resolve(name).resolve("tokenizer.json")), name);
    }

    /** {@code tok} gives HF's ids and decodes on the corpus recorded for fixture {@code name} (also used for GGUF tokenizers). */
    static void assertEncodeAndDecodeMatchHf(Tokenizer tok, String name) throws IOException {
        List<JsonNode> rows = readJsonl(FIXTURES.resolve(name).resolve("encode.jsonl.gz"));
        assertTrue(rows.size() > 400, "fixture too small");
        List<String> failures = new ArrayList<>();
        for (JsonNode row : rows) {
            String text = row.get("text").asText();
            int[] want = ints(row.get("ids"));
            int[] wantNoSpecial = ints(row.get("ids_no_special"));
            int[] got = tok.encode(text, true);
            int[] gotNoSpecial = tok.encode(text, false);
            if (!Arrays.equals(want, got)) failures.add("ids " + show(text) + "\n  want " + Arrays.toString(want) + "\n  got  " + Arrays.toString(got));
            if (!Arrays.equals(wantNoSpecial, gotNoSpecial)) failures.add("ids(no special) " + show(text) + "\n  want " + Arrays.toString(wantNoSpecial) + "\n  got  " + Arrays.toString(gotNoSpecial));
            String decoded = tok.decode(want);
            if (!row.get("decoded").asText().equals(decoded)) failures.add("decode " + show(text) + "\n  want " + show(row.get("decoded").asText()) + "\n  got  " + show(decoded));
            String skipped = tok.decode(want, true);
            if (!row.get("decoded_skip_special").asText().equals(skipped)) failures.add("decode(skip) " + show(text) + "\n  want " + show(row.get("decoded_skip_special").asText()) + "\n  got  " + show(skipped));
        }
        assertTrue(failures.isEmpty(), failures.size() + " mismatches for " + name + ", first:\n" + String.join("\n", failures.subList(0, Math.min(8, failures.size()))));
    }

    @ParameterizedTest
    @ValueSource(strings = {"aya", "gpt2", "llama3", "cohere_old", "sp", "sp_legacy", "misc_split", "misc_meta", "whitespace"})
    void decodeOfRandomIdsMatchesHf(String name) throws IOException {
        assertDecodeOfRandomIdsMatchesHf(Tokenizer.load(FIXTURES.resolve(name).resolve("tokenizer.json")), name);
    }

    static void assertDecodeOfRandomIdsMatchesHf(Tokenizer tok, String name) throws IOException {
        for (JsonNode row : readJsonl(FIXTURES.resolve(name).resolve("decode.jsonl"))) {
            int[] ids = ints(row.get("ids"));
            assertEquals(row.get("decoded").asText(), tok.decode(ids), () -> name + " decode " + Arrays.toString(ids));
        }
    }

    static String show(String s) {
        StringBuilder sb = new StringBuilder("\"");
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < 0x20 || (c >= 0x7f && c < 0xa0) || Character.isSurrogate(c) && false) sb.append(String.format("\\u%04x", (int) c));
            else sb.append(c);
        }
        return sb.append('"').toString();
    }
}
