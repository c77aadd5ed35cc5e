package aya.cli;

import aya.weights.Npy;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * init-random against transformers (src/test/python/make_init_random_fixture.py), and bench end to end on a tiny
 * init-random model through {@code Main.run}.
 */
class InitRandomAndBenchCliTest extends CliCapture {

    private static final Path FIXTURE = Path.of("src/test/resources/init-random");
    // the flags the fixture's checkpoint was made with
    private static final String[] TINY = {"--seed", "11", "--layers", "5", "--hidden", "64", "--intermediate", "96",
            "--heads", "4", "--kv-heads", "2", "--head-dim", "16", "--vocab", "300"};

    private Path tinyModel(Path tmp) {
        Path dir = tmp.resolve("tiny");
        String[] args = new String[TINY.length + 3];
        args[0] = "init-random";
        args[1] = "--output";
        args[2] = dir.toString();
        System.arraycopy(TINY, 0, args, 3, TINY.length);
        assertEquals(0, Main.run(args), err.toString(StandardCharsets.UTF_8));
        return dir;
    }

    @Test
    void initRandomCheckpointIsTheOneTransformersReadAndTheEngineAgreesWithIt(@TempDir Path tmp) throws Exception {
        Path model = tinyModel(tmp);
        JsonNode ref = new ObjectMapper().readTree(FIXTURE.resolve("reference.json").toFile());
        for (var shard : List.of("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")) {
            assertEquals(ref.get("sha256").get(shard).asText(), sha256(model.resolve(shard)),
                    shard + " differs from the bytes transformers read (generator changed? rerun the fixture script)");
        }
        StringBuilder ids = new StringBuilder();
        for (JsonNode id : ref.get("input_ids")) ids.append(ids.isEmpty() ? "" : ",").append(id.asInt());
        Path npy = tmp.resolve("logits.npy");
        assertEquals(0, Main.run("logits", "--model", model.toString(), "--ids", ids.toString(), "--output",
                npy.toString(), "--backend", "java"), err.toString(StandardCharsets.UTF_8));
        Npy.Matrix want = Npy.read(FIXTURE.resolve("logits.npy"));
        Npy.Matrix got = Npy.read(npy);
        assertEquals(want.rows(), got.rows());
        assertEquals(want.cols(), got.cols());
        float maxAbs = 0, maxErr = 0;
        for (int r = 0; r < want.rows(); r++) {
            for (int c = 0; c < want.cols(); c++) {
                maxAbs = Math.max(maxAbs, Math.abs(want.get(r, c)));
                maxErr = Math.max(maxErr, Math.abs(want.get(r, c) - got.get(r, c)));
            }
        }
        assertTrue(maxAbs > 0.1f, "random weights give non-trivial logits: " + maxAbs);
        assertTrue(maxErr <= 1e-4f * maxAbs, "max error " + maxErr + " vs max|logit| " + maxAbs);
    }

    @Test
    void benchPrintsOneJsonLinePerBackendWithTheRequiredKeys(@TempDir Path tmp) throws IOException {
        Path model = tinyModel(tmp);
        out.reset();
        assertEquals(0, Main.run("bench", "--model", model.toString(), "--backend", "java", "--prompt-tokens", "8",
                "--gen-tokens", "16", "--depth", "5", "--reps", "2", "--threads", "2", "--bandwidth-mb", "8", "--json"),
                err.toString(StandardCharsets.UTF_8));
        List<String> lines = out.toString(StandardCharsets.UTF_8).lines().toList();
        assertEquals(1, lines.size(), "one line per backend: " + lines);
        JsonNode r = new ObjectMapper().readTree(lines.getFirst());
        assertEquals("java", r.get("backend").asText());
        assertEquals("bf16", r.get("quant").asText());
        assertEquals("f32", r.get("activations").asText());
        assertEquals(2, r.get("threads").asInt());
        assertEquals(8, r.get("prompt_tokens").asInt());
        assertEquals(16, r.get("gen_tokens").asInt());
        assertEquals(5, r.get("depth").asInt());
        for (String key : List.of("prefill_tokens_per_s", "decode_tokens_per_s", "read_gb_per_s", "load_s")) {
            assertTrue(r.get(key).asDouble() > 0, key + " = " + r.get(key));
        }
        assertTrue(r.get("peak_rss_bytes").asLong() > 0);
        long weights = Files.size(model.resolve("model-00001-of-00002.safetensors"))
                + Files.size(model.resolve("model-00002-of-00002.safetensors"));
        assertTrue(r.get("weight_bytes").asLong() > 0 && r.get("weight_bytes").asLong() < weights);
        // decode at positions 5..20 (middle: 13) reads every matrix (the tied head is the embedding table), the 6
        // LayerNorm weights as the f32 copies made at load (bf16 in the file), one embedding row, and K and V of 14
        // positions in 5 layers
        long kv = 5L * 14 * 2 * 32 * Float.BYTES;
        long normsAsF32 = 6L * 64 * (Float.BYTES - 2), embeddingRow = 64L * 2;
        assertEquals(r.get("weight_bytes").asLong() + normsAsF32 + embeddingRow + kv, r.get("decode_bytes_per_token").asLong());

        out.reset();
        assertEquals(0, Main.run("bench", "--model", model.toString(), "--prompt-tokens", "4", "--gen-tokens", "16",
                "--reps", "1", "--bandwidth-mb", "8"), err.toString(StandardCharsets.UTF_8));
        String table = out.toString(StandardCharsets.UTF_8);
        assertTrue(table.contains("| java    | bf16  | f32  |") && table.contains("pp4") && table.contains("tg16"), table);
    }

    @Test
    void benchProfilePrintsTheTimedDecodeStepsPerOperation(@TempDir Path tmp) {
        Path model = tinyModel(tmp);
        out.reset();
        err.reset();
        assertEquals(0, Main.run("bench", "--model", model.toString(), "--backend", "java", "--prompt-tokens", "0",
                "--gen-tokens", "16", "--reps", "2", "--bandwidth-mb", "8", "--profile"), err.toString(StandardCharsets.UTF_8));
        String e = err.toString(StandardCharsets.UTF_8);
        // 2 reps x 16 decode steps; the warm-up's steps are left out
        assertTrue(e.contains("aya: java decode per-op profile over 32 forward passes"), e);
        for (String op : List.of("q/k/v + gate/up projections, SwiGLU", "attention", "o_proj + down_proj + residual",
                "output head (logits)")) {
            assertTrue(e.contains(op), op + " in " + e);
        }
        assertFalse(e.contains("prefill per-op profile"), "no prefill was run: " + e);

        // with a prefill: its 2 timed passes (the warm-up's left out) get their own profile
        out.reset();
        err.reset();
        assertEquals(0, Main.run("bench", "--model", model.toString(), "--backend", "java", "--prompt-tokens", "8",
                "--gen-tokens", "16", "--reps", "2", "--bandwidth-mb", "8", "--profile"), err.toString(StandardCharsets.UTF_8));
        e = err.toString(StandardCharsets.UTF_8);
        assertTrue(e.contains("aya: java prefill per-op profile over 2 forward passes"), e);
        assertTrue(e.contains("aya: java decode per-op profile over 32 forward passes"), e);

        // prefill only: no empty decode profile
        out.reset();
        err.reset();
        assertEquals(0, Main.run("bench", "--model", model.toString(), "--backend", "java", "--prompt-tokens", "8",
                "--gen-tokens", "0", "--reps", "2", "--bandwidth-mb", "8", "--profile"), err.toString(StandardCharsets.UTF_8));
        e = err.toString(StandardCharsets.UTF_8);
        assertTrue(e.contains("aya: java prefill per-op profile over 2 forward passes"), e);
        assertFalse(e.contains("decode per-op profile"), "no decode was run: " + e);
    }

    @Test
    void benchUserErrorsExitWith2(@TempDir Path tmp) {
        Path model = tinyModel(tmp);
        String m = model.toString();
        assertEquals(2, Main.run("bench", "--model", tmp.resolve("nope").toString()));
        assertEquals(2, Main.run("bench"));
        assertEquals(2, Main.run("bench", "--model", m, "--backend", "gpu"));
        assertEquals(2, Main.run("bench", "--model", m, "--reps", "0"));
        assertEquals(2, Main.run("bench", "--model", m, "--prompt-tokens", "-1"));
        assertEquals(2, Main.run("bench", "--model", m, "--prompt-tokens", "0", "--gen-tokens", "0"));
        err.reset();
        assertEquals(2, Main.run("bench", "--model", m, "--gen-tokens", "15")); // too few steps to time decode
        assertTrue(err.toString(StandardCharsets.UTF_8).contains("--gen-tokens must be 0 (no decode test) or at least 16, got 15"),
                err.toString(StandardCharsets.UTF_8));
        assertEquals(2, Main.run("bench", "--model", m, "--threads", "0"));
        assertEquals(2, Main.run("bench", "--model", m, "--depth", "100000", "--bandwidth-mb", "8"));
        String e = err.toString(StandardCharsets.UTF_8);
        assertFalse(e.contains("Exception"), "one-line errors, no stack traces: " + e);
        assertTrue(e.lines().allMatch(l -> l.startsWith("aya: ") || l.startsWith("WARNING") || l.isBlank()), e);
    }

    private static String sha256(Path file) throws IOException, NoSuchAlgorithmException {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
    }
}
