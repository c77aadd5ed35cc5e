package aya.config;

import aya.AyaException;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** config.json / generation_config.json parsing against transformers' Cohere2Config behaviour (5.18). */
class ModelConfigTest {

    static ModelConfig parse(String json) {
        try {
            return ModelConfig.parse(new ObjectMapper().readTree(json), "config.json");
        } catch (IOException e) {
            throw new RuntimeException(e);
        }
    }

    static AyaException fails(String json) {
        return assertThrows(AyaException.class, () -> parse(json));
    }

    static final String TINY_AYA = """
            {"architectures": ["Cohere2ForCausalLM"], "model_type": "cohere2", "hidden_size": 2048,
             "intermediate_size": 11008, "num_hidden_layers": 36, "num_attention_heads": 16, "num_key_value_heads": 4,
             "vocab_size": 262144, "logit_scale": 1.0, "rope_theta": 50000, "sliding_window": 4096,
             "sliding_window_pattern": 4, "bos_token_id": 2, "eos_token_id": 3, "pad_token_id": 0,
             "max_position_embeddings": 8192}""";

    @Test
    void tinyAyaShapedConfig() {
        ModelConfig c = parse(TINY_AYA);
        assertEquals(128, c.headDim());
        assertEquals(512, c.kvDim());
        assertEquals(1.0f, c.logitScale());
        assertTrue(c.tieWordEmbeddings(), "absent tie_word_embeddings means tied");
        assertEquals(50000.0, c.ropeTheta());
        assertEquals(1e-5f, c.layerNormEps());
        for (int i = 0; i < 36; i++) {
            assertEquals(i % 4 != 3, c.isSliding(i), "layer " + i + ": layers 3, 7, ..., 35 are global");
        }
        assertArrayEquals(new int[] {3}, c.eosTokenIds());
        assertEquals(2, c.bosTokenId());
    }

    @Test
    void absentFieldsTakeCohere2ConfigDefaults() {
        ModelConfig c = parse("{\"hidden_size\": 64, \"num_attention_heads\": 4, \"num_hidden_layers\": 8}");
        assertEquals(0.0625f, c.logitScale());
        assertTrue(c.tieWordEmbeddings());
        assertEquals(16, c.headDim());
        assertEquals(4, c.numKvHeads(), "num_key_value_heads defaults to num_attention_heads");
        assertEquals(10000.0, c.ropeTheta());
        assertEquals(4096, c.slidingWindow());
        assertEquals(8192, c.maxPositionEmbeddings());
        assertEquals(256000, c.vocabSize());
        assertEquals(22528, c.intermediateSize());
        assertArrayEquals(new int[] {255001}, c.eosTokenIds());
        boolean[] expect = {true, true, true, false, true, true, true, false}; // default pattern 4
        for (int i = 0; i < 8; i++) assertEquals(expect[i], c.isSliding(i));
    }

    @Test
    void ropeParametersWinOverTopLevelTheta() {
        ModelConfig c = parse("{\"rope_theta\": 1.0, \"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 750.0}}");
        assertEquals(750.0, c.ropeTheta());
        assertEquals(123.0, parse("{\"rope_theta\": 123.0}").ropeTheta());
        assertTrue(fails("{\"rope_parameters\": {\"rope_type\": \"yarn\", \"rope_theta\": 5}}").getMessage().contains("rope_type"));
    }

    @Test
    void explicitLayerTypesAndOldPattern() {
        ModelConfig c = parse("{\"num_hidden_layers\": 3, \"layer_types\": [\"full_attention\", \"sliding_attention\", \"full_attention\"]}");
        assertFalse(c.isSliding(0));
        assertTrue(c.isSliding(1));
        assertFalse(c.isSliding(2));
        ModelConfig p = parse("{\"num_hidden_layers\": 5, \"sliding_window_pattern\": 2}");
        boolean[] expect = {true, false, true, false, true};
        for (int i = 0; i < 5; i++) assertEquals(expect[i], p.isSliding(i));
    }

    @Test
    void headDimFieldIsUsedAsTransformersDoes() {
        // Cohere2Attention: q_proj is [heads x head_dim, hidden] when config.json sets head_dim, whatever hidden / heads is
        ModelConfig wide = parse("{\"hidden_size\": 64, \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"head_dim\": 32}");
        assertEquals(32, wide.headDim());
        assertEquals(128, wide.qDim());
        assertEquals(64, wide.kvDim());
        ModelConfig derived = parse("{\"hidden_size\": 64, \"num_attention_heads\": 4}");
        assertEquals(16, derived.headDim());
        assertEquals(64, derived.qDim());
    }

    @Test
    void inconsistentOrUnknownConfigsNameTheField() {
        assertTrue(fails("{\"architectures\": [\"LlamaForCausalLM\"]}").getMessage().contains("architectures"));
        assertTrue(fails("{\"model_type\": \"cohere\"}").getMessage().contains("model_type"));
        assertTrue(fails("{\"hidden_size\": 100, \"num_attention_heads\": 3}").getMessage().contains("num_attention_heads"));
        assertTrue(fails("{\"num_attention_heads\": 6, \"num_key_value_heads\": 4, \"hidden_size\": 96}").getMessage().contains("num_key_value_heads"));
        assertTrue(fails("{\"hidden_size\": 64, \"num_attention_heads\": 4, \"head_dim\": 0}").getMessage().contains("head_dim"));
        assertTrue(fails("{\"hidden_size\": 64, \"num_attention_heads\": 4, \"head_dim\": 33}").getMessage().contains("even"));
        assertTrue(fails("{\"num_hidden_layers\": 3, \"layer_types\": [\"full_attention\"]}").getMessage().contains("layer_types"));
        assertTrue(fails("{\"num_hidden_layers\": 1, \"layer_types\": [\"chunked_attention\"]}").getMessage().contains("chunked_attention"));
        assertTrue(fails("{\"vocab_size\": -5}").getMessage().contains("vocab_size"));
        assertTrue(fails("{\"vocab_size\": \"big\"}").getMessage().contains("vocab_size"));
        assertTrue(fails("{\"hidden_act\": \"gelu\"}").getMessage().contains("hidden_act"));
        assertTrue(fails("{\"attention_bias\": true}").getMessage().contains("attention_bias"));
        assertTrue(fails("{\"hidden_size\": 60, \"num_attention_heads\": 4}").getMessage().contains("even"));
        assertTrue(fails("{\"sliding_window\": null}").getMessage().contains("sliding_window"));
        assertEquals(0, parse("{\"num_hidden_layers\": 1, \"sliding_window\": null, \"layer_types\": [\"full_attention\"]}").numLayers() - 1);
    }

    @Test
    void missingOrBrokenConfigFile(@TempDir Path dir) throws IOException {
        AyaException e = assertThrows(AyaException.class, () -> ModelConfig.load(dir));
        assertTrue(e.getMessage().contains("config.json") && e.getMessage().contains("missing"), e.getMessage());
        Files.writeString(dir.resolve("config.json"), "{\"hidden_size\": 64,");
        e = assertThrows(AyaException.class, () -> ModelConfig.load(dir));
        assertTrue(e.getMessage().contains("not valid JSON"), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), "one line");
        Files.writeString(dir.resolve("config.json"), "[1, 2]");
        assertThrows(AyaException.class, () -> ModelConfig.load(dir));
    }

    @Test
    void generationConfigEosIsAnIntOrAList(@TempDir Path dir) throws IOException {
        ModelConfig model = parse(TINY_AYA);
        GenerationConfig absent = GenerationConfig.load(dir, model);
        assertArrayEquals(new int[] {3}, absent.eosTokenIds(), "falls back to config.json");
        Files.writeString(dir.resolve("generation_config.json"),
                "{\"bos_token_id\": 2, \"eos_token_id\": [3, 6, 261001], \"pad_token_id\": 0, \"do_sample\": true, \"temperature\": 0.1, \"top_p\": 0.95, \"top_k\": 40}");
        GenerationConfig g = GenerationConfig.load(dir, model);
        assertArrayEquals(new int[] {3, 6, 261001}, g.eosTokenIds());
        assertTrue(g.isEos(261001));
        assertFalse(g.isEos(2));
        assertTrue(g.doSample());
        assertEquals(0.1f, g.temperature());
        assertEquals(0.95f, g.topP());
        assertEquals(40, (int) g.topK());
        Files.writeString(dir.resolve("generation_config.json"), "{\"eos_token_id\": 7}");
        assertArrayEquals(new int[] {7}, GenerationConfig.load(dir, model).eosTokenIds());
        assertNull(GenerationConfig.load(dir, model).temperature());
        Files.writeString(dir.resolve("generation_config.json"), "{\"eos_token_id\": [\"x\"]}");
        assertTrue(assertThrows(AyaException.class, () -> GenerationConfig.load(dir, model)).getMessage().contains("eos_token_id"));
    }
}
