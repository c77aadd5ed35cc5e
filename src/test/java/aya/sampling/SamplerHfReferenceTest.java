package aya.sampling;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.io.InputStream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Our filtered distributions against transformers' logits processors (TopK, TopP, MinP, Temperature,
 * RepetitionPenalty) where the two libraries mean the same thing; made by src/test/python/make_sampling_fixtures.py.
 */
class SamplerHfReferenceTest {

    @Test
    void distributionsMatchTransformers() throws Exception {
        JsonNode root;
        try (InputStream in = getClass().getResourceAsStream("/sampling/hf_logits_processors.json")) {
            root = new ObjectMapper().readTree(in);
        }
        int vocab = root.get("vocab").asInt();
        int checked = 0;
        for (JsonNode c : root.get("cases")) {
            String name = c.get("name").asText();
            float[] logits = new float[vocab];
            for (int i = 0; i < vocab; i++) logits[i] = (float) c.get("logits").get(i).asDouble();
            SamplerSettings settings = new SamplerSettings((float) c.get("temperature").asDouble(), c.get("top_k").asInt(),
                    (float) c.get("top_p").asDouble(), (float) c.get("min_p").asDouble(),
                    (float) c.get("repeat_penalty").asDouble(), 64, 0);
            Sampler sampler = new Sampler(settings, vocab, 4096);
            for (JsonNode id : c.get("history")) sampler.accept(id.asInt());
            Sampler.Distribution d = sampler.distribution(logits);
            double[] ours = new double[vocab];
            for (int i = 0; i < d.ids().length; i++) ours[d.ids()[i]] = d.probabilities()[i];
            int survivors = 0;
            for (int i = 0; i < vocab; i++) {
                double expected = c.get("probs").get(i).asDouble();
                assertEquals(expected, ours[i], 1e-6, name + ": token " + i);
                assertEquals(expected > 0, ours[i] > 0, name + ": token " + i + " filtered differently");
                if (expected > 0) survivors++;
            }
            assertEquals(survivors, d.ids().length, name);
            checked++;
        }
        assertEquals(8, checked);
    }
}
