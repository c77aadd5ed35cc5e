package aya.sampling;

import aya.AyaException;
import aya.config.GenerationConfig;
import aya.sampling.SamplerSettings.Overrides;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

class SamplerSettingsTest {

    @Test
    void withoutGenerationConfigTheDefaultsAreLlamaCpps() {
        SamplerSettings s = SamplerSettings.resolve(Overrides.NONE, GenerationConfig.NONE);
        assertEquals(0.8f, s.temperature());
        assertEquals(40, s.topK());
        assertEquals(0.95f, s.topP());
        assertEquals(0.05f, s.minP());
        assertEquals(1.0f, s.repeatPenalty());
        assertEquals(64, s.repeatLastN());
    }

    @Test
    void generationConfigOverridesDefaultsAndTheCommandLineOverridesBoth() {
        GenerationConfig model = GenerationConfig.parse("""
                {"bos_token_id": 2, "eos_token_id": [3, 6], "do_sample": true, "temperature": 0.3, "top_p": 0.9,
                 "top_k": 0, "repetition_penalty": 1.1}""", "generation_config.json", null);
        SamplerSettings s = SamplerSettings.resolve(Overrides.NONE, model);
        assertEquals(0.3f, s.temperature());
        assertEquals(0, s.topK());
        assertEquals(0.9f, s.topP());
        assertEquals(0.05f, s.minP(), "absent in the file: llama.cpp's default");
        assertEquals(1.1f, s.repeatPenalty());

        SamplerSettings cli = SamplerSettings.resolve(new Overrides(0.7f, 20, null, 0f, null, 128, 99L), model);
        assertEquals(0.7f, cli.temperature());
        assertEquals(20, cli.topK());
        assertEquals(0.9f, cli.topP());
        assertEquals(0f, cli.minP());
        assertEquals(1.1f, cli.repeatPenalty());
        assertEquals(128, cli.repeatLastN());
        assertEquals(99L, cli.seed());
    }

    @Test
    void doSampleFalseMeansGreedyUnlessTheCommandLineSetsATemperature() {
        GenerationConfig model = GenerationConfig.parse("{\"do_sample\": false, \"temperature\": 0.6}", "g.json", null);
        assertTrue(SamplerSettings.resolve(Overrides.NONE, model).greedy());
        Overrides t = new Overrides(0.5f, null, null, null, null, null, null);
        assertEquals(0.5f, SamplerSettings.resolve(t, model).temperature());
        // absent do_sample is not a request for greedy: the file's temperature is used
        assertEquals(0.6f, SamplerSettings.resolve(Overrides.NONE,
                GenerationConfig.parse("{\"temperature\": 0.6}", "g.json", null)).temperature());
    }

    @Test
    void aMissingFileIsNoneAndABadOneIsAOneLineErrorNamingTheFile(@TempDir Path dir) throws Exception {
        GenerationConfig none = GenerationConfig.load(dir, null);
        assertNull(none.temperature());
        assertNull(none.doSample());
        assertEquals(0, none.eosTokenIds().length);
        Path bad = dir.resolve("generation_config.json");
        Files.writeString(bad, "{\"temperature\": ");
        AyaException e = assertThrows(AyaException.class, () -> GenerationConfig.load(dir, null));
        assertTrue(e.getMessage().startsWith(bad.toString()), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
        for (String json : new String[] {"[1]", "{\"temperature\": \"hot\"}", "{\"top_k\": 2.5}", "{\"top_p\": 1.5}",
                "{\"do_sample\": \"yes\"}", "{\"repetition_penalty\": 0}", "{\"temperature\": -1}"}) {
            AyaException err = assertThrows(AyaException.class, () -> GenerationConfig.parse(json, "g.json", null), json);
            assertTrue(err.getMessage().startsWith("g.json: "), err.getMessage());
        }
    }

    @Test
    void outOfRangeValuesAreRejected() {
        assertThrows(AyaException.class, () -> new SamplerSettings(-0.1f, 40, 0.95f, 0.05f, 1, 64, 0));
        assertThrows(AyaException.class, () -> new SamplerSettings(Float.NaN, 40, 0.95f, 0.05f, 1, 64, 0));
        assertThrows(AyaException.class, () -> new SamplerSettings(0.8f, -1, 0.95f, 0.05f, 1, 64, 0));
        assertThrows(AyaException.class, () -> new SamplerSettings(0.8f, 40, 1.01f, 0.05f, 1, 64, 0));
        assertThrows(AyaException.class, () -> new SamplerSettings(0.8f, 40, 0.95f, -0.05f, 1, 64, 0));
        assertThrows(AyaException.class, () -> new SamplerSettings(0.8f, 40, 0.95f, 0.05f, 0, 64, 0));
        assertThrows(AyaException.class, () -> new SamplerSettings(0.8f, 40, 0.95f, 0.05f, 1, -2, 0));
    }
}
