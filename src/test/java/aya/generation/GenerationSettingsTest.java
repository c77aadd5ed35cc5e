package aya.generation;

import aya.AyaException;
import aya.config.GenerationConfig;
import aya.sampling.SamplerSettings;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class GenerationSettingsTest {

    static final GenerationConfig MODEL = GenerationConfig.parse("""
            {"do_sample": true, "temperature": 0.3, "top_p": 0.9, "top_k": 0, "repetition_penalty": 1.1,
             "max_new_tokens": 77}""", "generation_config.json", null);

    @Test
    void unsetValuesComeFromGenerationConfigThenLlamaCpp() {
        GenerationSettings s = GenerationSettings.builder(MODEL).seed(7).build();
        assertEquals(new SamplerSettings(0.3f, 0, 0.9f, 0.05f, 1.1f, 64, 7), s.sampling());
        assertEquals(77, s.maxTokens(), "generation_config.json's max_new_tokens");
        assertEquals(List.of(), s.stopStrings());
        assertFalse(s.ignoreEos());

        GenerationSettings plain = GenerationSettings.builder().seed(7).build();
        assertEquals(SamplerSettings.llamaCppDefaults(7), plain.sampling());
        assertEquals(GenerationSettings.DEFAULT_MAX_TOKENS, plain.maxTokens());
    }

    @Test
    void everySetValueWins() {
        GenerationSettings s = GenerationSettings.builder(MODEL).temperature(0.5).topK(20).topP(0.8).minP(0.1)
                .repeatPenalty(1.3).repeatLastN(-1).seed(42).maxTokens(256).stopStrings("\n\n", "END").ignoreEos(true).build();
        assertEquals(new SamplerSettings(0.5f, 20, 0.8f, 0.1f, 1.3f, -1, 42), s.sampling());
        assertEquals(new GenerationSettings(s.sampling(), 256, List.of("\n\n", "END"), true), s);
    }

    @Test
    void temperatureZeroIsGreedyEvenWhenTheModelAsksToSample() {
        GenerationSettings s = GenerationSettings.builder(MODEL).temperature(0).maxTokens(5).build();
        assertTrue(s.sampling().greedy());
        assertEquals(GenerationSettings.greedy(5).sampling().temperature(), s.sampling().temperature());
        assertEquals(5, GenerationSettings.greedy(5).maxTokens());
        assertTrue(GenerationSettings.greedy(5).sampling().greedy());
    }

    @Test
    void withoutASeedEachBuildDrawsAFreshOne() {
        GenerationSettings.Builder b = GenerationSettings.builder();
        long a = b.build().sampling().seed(), c = b.build().sampling().seed(), d = b.build().sampling().seed();
        assertFalse(a == c && c == d, "three random 64-bit seeds were equal");
    }

    @Test
    void optionsWithersChangeOneValueAndStillCheckIt() {
        AyaModel.Options o = AyaModel.Options.DEFAULT.withBackend("java").withThreads(2).withLog(null)
                .withQuant(aya.kernels.WeightType.Q8_0).withActivations(aya.model.Activations.BF16);
        assertEquals(new AyaModel.Options("java", 2, null, aya.kernels.WeightType.Q8_0, aya.model.Activations.BF16), o);
        assertEquals(new AyaModel.Options("auto", 0, System.err), AyaModel.Options.DEFAULT.withQuant(null));
        assertThrows(AyaException.class, () -> AyaModel.Options.DEFAULT.withThreads(-1));
        assertThrows(AyaException.class, () -> AyaModel.Options.DEFAULT.withQuant(aya.kernels.WeightType.BF16));
    }

    @Test
    void outOfRangeValuesAreOneLineErrorsNamingTheValue() {
        assertTrue(assertThrows(AyaException.class, () -> GenerationSettings.builder().temperature(-1).build())
                .getMessage().startsWith("temperature"));
        assertTrue(assertThrows(AyaException.class, () -> GenerationSettings.builder().topP(1.5).build())
                .getMessage().startsWith("top-p"));
        assertTrue(assertThrows(AyaException.class, () -> GenerationSettings.builder().maxTokens(-2).build())
                .getMessage().startsWith("max tokens"));
        assertTrue(assertThrows(AyaException.class, () -> GenerationSettings.builder().stopStrings("").build())
                .getMessage().contains("stop string"));
    }
}
