package aya.fuzz;

import aya.config.GgufMetadata;
import aya.config.ModelConfig;
import aya.tokenizer.GgufTokenizer;
import aya.weights.GgufFile;
import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;

/**
 * Fuzzes the GGUF reader (counts, lengths, metadata values and arrays, tensor infos, alignment, offsets), then the
 * config and tokenizer built from whatever metadata it accepts. Inputs are whole files; the seed is a small valid
 * cohere2 GGUF written by gguf-py.
 */
class GgufFuzzTest {

    static Path dir;

    @BeforeAll
    static void makeDir() {
        dir = FuzzSupport.scratchDir("gguf");
    }

    @AfterAll
    static void removeDir() {
        FuzzSupport.deleteTree(dir);
    }

    @FuzzTest(maxDuration = "5s")
    @DictionaryEntries({"GGUF", "general.alignment", "general.architecture", "cohere2", "tokenizer.ggml.tokens",
            "tokenizer.ggml.pre", "tiny_aya", "cohere2.attention.sliding_window_pattern", "\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff"})
    void file(byte[] input) {
        Path file = dir.resolve("fuzz.gguf");
        FuzzSupport.write(file, input);
        FuzzSupport.onlyUserErrors(() -> {
            try (Arena arena = Arena.ofShared()) {
                GgufFile f = GgufFile.open(file, arena);
                // every tensor the reader accepted must lie inside the file: touch its first and last byte
                for (var t : f.tensors().values()) {
                    long n = t.data().byteSize();
                    if (n > 0) {
                        t.data().get(ValueLayout.JAVA_BYTE, 0);
                        t.data().get(ValueLayout.JAVA_BYTE, n - 1);
                    }
                }
                GgufMetadata m = new GgufMetadata(file.toString(), f.metadata());
                FuzzSupport.onlyUserErrors(() -> ModelConfig.fromGguf(m));
                FuzzSupport.onlyUserErrors(() -> GgufTokenizer.tokenizer(m).encode("ab a", true));
            }
        });
    }
}
