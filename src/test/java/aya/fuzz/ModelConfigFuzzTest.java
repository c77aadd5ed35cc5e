package aya.fuzz;

import aya.config.ModelConfig;
import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

import java.nio.file.Path;

/** Fuzzes config.json through ModelConfig.load, the path every command takes. */
class ModelConfigFuzzTest {

    static Path dir;

    @BeforeAll
    static void makeDir() {
        dir = FuzzSupport.scratchDir("config");
    }

    @AfterAll
    static void removeDir() {
        FuzzSupport.deleteTree(dir);
    }

    @FuzzTest(maxDuration = "10s")
    @DictionaryEntries({"\"num_hidden_layers\"", "\"hidden_size\"", "\"num_attention_heads\"", "\"num_key_value_heads\"",
            "\"head_dim\"", "\"vocab_size\"", "\"layer_types\"", "\"sliding_window_pattern\"", "\"rope_parameters\"",
            "\"rope_scaling\"", "\"rope_theta\"", "\"eos_token_id\"", "\"architectures\"", "\"Cohere2ForCausalLM\"",
            "\"sliding_attention\"", "\"full_attention\"", "2147483647", "-2147483648", "1e400", "null"})
    void config(byte[] input) {
        FuzzSupport.write(dir.resolve("config.json"), input);
        FuzzSupport.onlyUserErrors(() -> ModelConfig.load(dir));
    }
}
