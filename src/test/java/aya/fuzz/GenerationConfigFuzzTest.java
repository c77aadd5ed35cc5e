package aya.fuzz;

import aya.config.GenerationConfig;
import aya.config.ModelConfig;
import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

import java.nio.file.Path;

/** Fuzzes generation_config.json through GenerationConfig.load, next to a fixed valid model config. */
class GenerationConfigFuzzTest {

    static Path dir;
    static ModelConfig model;

    @BeforeAll
    static void makeDir() throws Exception {
        dir = FuzzSupport.scratchDir("genconfig");
        model = ModelConfig.parse(new ObjectMapper().readTree("{\"vocab_size\": 320, \"hidden_size\": 72,"
                + " \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"num_hidden_layers\": 4}"), "test config");
    }

    @AfterAll
    static void removeDir() {
        FuzzSupport.deleteTree(dir);
    }

    @FuzzTest(maxDuration = "10s")
    @DictionaryEntries({"\"eos_token_id\"", "\"bos_token_id\"", "\"pad_token_id\"", "\"do_sample\"", "\"temperature\"",
            "\"top_k\"", "\"top_p\"", "\"min_p\"", "\"repetition_penalty\"", "\"max_new_tokens\"", "true", "null",
            "2147483648", "-1", "1e999", "NaN"})
    void generationConfig(byte[] input) {
        FuzzSupport.write(dir.resolve("generation_config.json"), input);
        FuzzSupport.onlyUserErrors(() -> GenerationConfig.load(dir, model));
    }
}
