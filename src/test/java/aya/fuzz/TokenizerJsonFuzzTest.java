package aya.fuzz;

import aya.tokenizer.Tokenizer;
import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

import java.nio.file.Path;

/** Fuzzes tokenizer.json loading, then encodes and decodes a few strings with whatever loaded. */
class TokenizerJsonFuzzTest {

    static Path dir;

    @BeforeAll
    static void makeDir() {
        dir = FuzzSupport.scratchDir("tokenizer");
    }

    @AfterAll
    static void removeDir() {
        FuzzSupport.deleteTree(dir);
    }

    @FuzzTest(maxDuration = "5s")
    @DictionaryEntries({"\"model\"", "\"type\"", "\"BPE\"", "\"WordPiece\"", "\"Unigram\"", "\"vocab\"", "\"merges\"",
            "\"added_tokens\"", "\"special\"", "\"content\"", "\"id\"", "\"pre_tokenizer\"", "\"ByteLevel\"", "\"Split\"",
            "\"Sequence\"", "\"pretokenizers\"", "\"pattern\"", "\"Regex\"", "\"String\"", "\"behavior\"", "\"Isolated\"",
            "\"normalizer\"", "\"NFKC\"", "\"Replace\"", "\"decoder\"", "\"post_processor\"", "\"TemplateProcessing\"",
            "\"byte_fallback\"", "\"unk_token\"", "\"Metaspace\"", "\"(?i:'s)\"", "\"\\\\p{L}+\"", "2147483647", "-1"})
    void tokenizerJson(byte[] input) {
        Path file = dir.resolve("tokenizer.json");
        FuzzSupport.write(file, input);
        FuzzSupport.onlyUserErrors(() -> {
            Tokenizer t = Tokenizer.load(file);
            for (String s : new String[] {"", "Hello world", " a\u00e9\u4e2d\ud83d\ude00 12345\n\t"}) {
                int[] ids = t.encode(s, true);
                t.decode(ids, false);
                t.decode(ids, true);
            }
        });
    }
}
