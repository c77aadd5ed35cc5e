package aya.cli;

import aya.model.ModelFixtures;
import aya.weights.Npy;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** --activations f32|bf16 on logits, generate and bench: the flag reaches the engine, bad values are one-line errors. */
class ActivationsCliTest extends CliCapture {

    static final String FIXTURE = "hd128-oldconfig"; // bf16 weights

    @Test
    void logitsWithBf16ActivationsFollowTheBf16Reference(@TempDir Path tmp) {
        String ids = ModelFixtures.csv(ModelFixtures.inputIds(FIXTURE));
        String model = ModelFixtures.dir(FIXTURE).toString();
        Path bf16 = tmp.resolve("bf16.npy"), f32 = tmp.resolve("f32.npy");
        assertEquals(0, Main.run("logits", "--model", model, "--ids", ids, "--output", bf16.toString(), "--activations", "bf16",
                "--backend", "java"), stderr());
        assertEquals(0, Main.run("logits", "--model", model, "--ids", ids, "--output", f32.toString(), "--backend", "java"), stderr());
        float[] gotBf16 = Npy.read(bf16).data(), gotF32 = Npy.read(f32).data();
        float[] refBf16 = Npy.read(ModelFixtures.dir(FIXTURE).resolve("logits_bf16act.npy")).data();
        float[] refF32 = Npy.read(ModelFixtures.dir(FIXTURE).resolve("logits.npy")).data();
        assertTrue(maxDiff(gotBf16, refBf16) < 0.5 * maxDiff(gotBf16, refF32), "--activations bf16 follows the bf16 reference");
        assertTrue(maxDiff(gotF32, refF32) < 1e-3, "the default stays f32: " + maxDiff(gotF32, refF32));
    }

    @Test
    void generateWithBf16ActivationsKeepsTheClearGreedyChoices() {
        // this fixture's greedy picks win by >= 2.0 logits, bf16 activations move logits by ~0.02: same ids as HF
        var g = ModelFixtures.greedy(FIXTURE);
        assertEquals(0, Main.run("generate", "--model", ModelFixtures.dir(FIXTURE).toString(),
                "--ids", ModelFixtures.csv(ModelFixtures.ints(g.get("prompt"))), "--max-tokens", g.get("max_new_tokens").asText(),
                "--temperature", "0", "--print-ids", "--backend", "java", "--activations", "bf16"), stderr());
        assertEquals(ModelFixtures.csv(ModelFixtures.ints(g.get("ids"))), stdout().strip());
    }

    @Test
    void benchJsonReportsTheActivations() throws IOException {
        assertEquals(0, Main.run("bench", "--model", ModelFixtures.dir(FIXTURE).toString(), "--backend", "java",
                "--prompt-tokens", "6", "--gen-tokens", "16", "--reps", "1", "--threads", "1", "--bandwidth-mb", "8", "--json",
                "--activations", "bf16"), stderr());
        List<String> lines = stdout().lines().toList();
        assertEquals(1, lines.size(), lines.toString());
        JsonNode r = new ObjectMapper().readTree(lines.getFirst());
        assertEquals("bf16", r.get("activations").asText());
        assertEquals("bf16", r.get("quant").asText());
    }

    @Test
    void badValuesAreOneLineErrors(@TempDir Path tmp) {
        String out = tmp.resolve("x.npy").toString();
        assertEquals(2, Main.run("logits", "--model", ModelFixtures.dir(FIXTURE).toString(), "--ids", "2,5",
                "--output", out, "--activations", "fp8", "--backend", "java"));
        assertEquals("aya: --activations 'fp8': expected f32 or bf16", stderr().strip());
        assertFalse(Files.exists(tmp.resolve("x.npy")));
        err.reset();
        // f32 weights: bf16 activations would change nothing, so they are refused rather than silently ignored
        assertEquals(2, Main.run("logits", "--model", ModelFixtures.dir("f32-tied").toString(), "--ids", "2,5",
                "--output", out, "--activations", "bf16", "--backend", "java"));
        String message = stderr().strip();
        assertTrue(message.startsWith("aya: bf16 activations need bf16 weight matrices; this model's are f32"), message);
        assertEquals(1, message.lines().count(), message);
        err.reset();
        assertEquals(2, Main.run("bench", "--model", ModelFixtures.dir(FIXTURE).toString(), "--activations", "int4"));
        assertTrue(stderr().contains("--activations 'int4'"), stderr());
    }

    static double maxDiff(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) m = Math.max(m, Math.abs((double) a[i] - b[i]));
        return m;
    }
}
