package aya.config;

import aya.AyaException;
import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** ModelConfig.fromGguf on hand-written metadata; the expected schedules are llama.cpp's set_swa_pattern worked by hand. */
class ModelConfigGgufTest {

    static Map<String, Object> tinyAya(int layers) {
        Map<String, Object> m = new HashMap<>();
        m.put("general.architecture", "cohere2");
        m.put("cohere2.block_count", (long) layers);
        m.put("cohere2.embedding_length", 2048L);
        m.put("cohere2.feed_forward_length", 11008L);
        m.put("cohere2.attention.head_count", 16L);
        m.put("cohere2.attention.head_count_kv", 4L);
        m.put("cohere2.attention.layer_norm_epsilon", 1e-5);
        m.put("cohere2.rope.freq_base", 50000.0);
        m.put("cohere2.rope.dimension_count", 128L);
        m.put("cohere2.attention.sliding_window", 4096L);
        m.put("cohere2.logit_scale", 1.0);
        m.put("cohere2.context_length", 500000L);
        m.put("cohere2.vocab_size", 262144L);
        m.put("tokenizer.ggml.bos_token_id", 2L);
        m.put("tokenizer.ggml.eos_token_id", 6L);
        m.put("tokenizer.ggml.eot_token_id", 3L);
        return m;
    }

    static ModelConfig config(Map<String, Object> m) {
        return ModelConfig.fromGguf(new GgufMetadata("x.gguf", m));
    }

    @Test
    void readsTinyAyasFieldsAndBuildsThePeriodFourSchedule() {
        ModelConfig c = config(tinyAya(36));
        assertEquals(2048, c.hiddenSize());
        assertEquals(11008, c.intermediateSize());
        assertEquals(128, c.headDim());
        assertEquals(4, c.numKvHeads());
        assertEquals(50000.0, c.ropeTheta());
        assertEquals(4096, c.slidingWindow());
        assertEquals(262144, c.vocabSize(), "no token list: cohere2.vocab_size");
        assertEquals(500000, c.maxPositionEmbeddings());
        assertArrayEquals(new int[] {6, 3}, c.eosTokenIds());
        for (int i = 0; i < 36; i++) assertEquals(i % 4 != 3, c.isSliding(i), "layer " + i); // globals: 3, 7, ..., 35
    }

    @Test
    void aPatternKeyOverridesThePeriodAndAnArrayGivesEachLayer() {
        Map<String, Object> m = tinyAya(6);
        m.put("cohere2.attention.sliding_window_pattern", 3L);
        assertArrayEquals(new boolean[] {true, true, false, true, true, false}, config(m).slidingLayers());
        m.put("cohere2.attention.sliding_window_pattern", 0L);
        assertArrayEquals(new boolean[] {true, true, true, true, true, true}, config(m).slidingLayers(), "period 0: all slide");
        m.put("cohere2.attention.sliding_window_pattern", List.of(false, true, true, false, true, true));
        assertArrayEquals(new boolean[] {false, true, true, false, true, true}, config(m).slidingLayers());
        m.put("cohere2.attention.sliding_window_pattern", List.of(true));
        assertTrue(assertThrows(AyaException.class, () -> config(m)).getMessage().contains("lists 1 layers, the model has 6"));
    }

    @Test
    void keyLengthGivesAHeadSizeOtherThanWidthOverHeads() {
        Map<String, Object> m = tinyAya(4);
        m.put("cohere2.attention.key_length", 64L);
        AyaException e = assertThrows(AyaException.class, () -> config(m));
        assertTrue(e.getMessage().contains("rope.dimension_count is 128, this engine needs the head size 64"), e.getMessage());
        m.put("cohere2.rope.dimension_count", 64L);
        ModelConfig c = config(m);
        assertEquals(64, c.headDim());
        assertEquals(16 * 64, c.qDim());
        assertEquals(2048, c.hiddenSize());
    }

    @Test
    void slidingLayersUseFreqBaseSwaWhenTheFileHasIt() {
        Map<String, Object> m = tinyAya(4);
        m.put("cohere2.rope.freq_base_swa", 10000.0);
        assertEquals(10000.0, config(m).ropeTheta());
    }

    @Test
    void refusesWhatTheForwardPassCannotRun() {
        String[][] cases = {
                {"general.architecture", "llama", "x.gguf: architecture 'llama', this engine runs only 'cohere2'"},
                {"cohere2.rope.dimension_count", "64", "rope.dimension_count is 64"},
                {"cohere2.attention.head_count_kv", "5", "not a multiple of attention.head_count_kv (5)"},
                {"cohere2.embedding_length", "-", "metadata 'cohere2.embedding_length' is missing"},
                {"cohere2.logit_scale", "-", "metadata 'cohere2.logit_scale' is missing"},
                {"cohere2.block_count", "text", "metadata 'cohere2.block_count' must be a non-negative integer below 2^31, got 'text'"},
        };
        for (String[] c : cases) {
            Map<String, Object> m = tinyAya(4);
            if (c[1].equals("-")) m.remove(c[0]);
            else if (c[1].matches("\\d+")) m.put(c[0], Long.parseLong(c[1]));
            else m.put(c[0], c[1]);
            AyaException e = assertThrows(AyaException.class, () -> config(m), c[0]);
            assertTrue(e.getMessage().contains(c[2]), e.getMessage());
        }
    }
}
