package aya.cli;

import aya.model.ModelFixtures;
import aya.weights.GgufFixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.function.Consumer;

import static aya.weights.GgufFixtures.*;
import static org.junit.jupiter.api.Assertions.*;

/** The commands on GGUF files through {@code Main.run}: a .gguf alone runs, and every broken one is exit 2 with one line. */
class GgufCliTest extends CliCapture {

    @Test
    void generateRunsAGgufAloneAndGivesTransformersGreedyIds(@TempDir Path tmp) throws Exception {
        Path alone = Files.copy(TINY_BF16, tmp.resolve("model.gguf")); // no config.json or tokenizer.json beside it
        var g = ModelFixtures.json(TINY_HF.resolve("greedy.json"));
        int[] expected = ModelFixtures.ints(g.get("continuation"));
        assertEquals(0, Main.run("generate", "--model", alone.toString(), "--ids", ModelFixtures.csv(ModelFixtures.ints(g.get("prompt"))),
                "--max-tokens", String.valueOf(expected.length), "--temperature", "0", "--print-ids", "--ignore-eos", "--backend", "java"), stderr());
        assertEquals(ModelFixtures.csv(expected), stdout().strip());
    }

    @Test
    void infoShowsTheFilesTypesAndTokenizeUsesItsTokenizer() {
        assertEquals(0, Main.run("info", "--model", TINY_Q4_0.toString(), "--backend", "java"), stderr());
        assertTrue(stdout().contains("Q4_0=") && stdout().contains("Q8_0=") && stdout().contains("F32="), stdout());
        assertTrue(stdout().contains("schedule     SSSG"), stdout());
        out.reset();
        assertEquals(0, Main.run("tokenize", "--model", TINY_BF16.toString(), "Hello world! 12345"), stderr());
        String fromGguf = stdout();
        out.reset();
        assertEquals(0, Main.run("tokenize", "--tokenizer", TINY_HF.resolve("tokenizer.json").toString(), "Hello world! 12345"), stderr());
        assertEquals(stdout(), fromGguf);
    }

    @Test
    void quantOnAGgufIsRefused() {
        assertEquals(2, Main.run("info", "--model", TINY_BF16.toString(), "--quant", "q8_0", "--backend", "java"));
        assertTrue(stderr().contains("a GGUF file runs in the types it holds"), stderr());
    }

    /** Each broken file, through each command: exit 2, one line naming the file and the problem, no output file. */
    @Test
    void brokenFilesAreOneLineErrorsWithExitTwoAndNothingWritten(@TempDir Path tmp) {
        record Broken(String name, Consumer<byte[]> patch, String problem) {}
        Broken[] cases = {
                new Broken("magic", f -> f[0] = 'X', "bad magic"),
                new Broken("truncated", null, "truncated"),
                new Broken("version", f -> le(f).putInt(4, 7), "unsupported GGUF version 7"),
                new Broken("type", f -> le(f).putInt(tensorInfo(f, "blk.0.attn_q.weight") + 4 + 16, 40), "unsupported ggml type 40"),
                new Broken("arch", f -> patchStringValue(f, "general.architecture", "gemma3x"), "architecture 'gemma3x'"),
                new Broken("shape", f -> {
                    int at = tensorInfo(f, "blk.1.attn_k.weight") + 4;
                    le(f).putLong(at, 32).putLong(at + 8, 64);
                }, "has shape [64, 32], expected [32, 64]"),
                new Broken("pre", f -> patchStringValue(f, "tokenizer.ggml.pre", "tiny_ayb"), "tokenizer.ggml.pre is 'tiny_ayb'"),
        };
        for (Broken b : cases) {
            byte[] bytes = GgufFixtures.bytes(TINY_BF16);
            if (b.patch == null) bytes = Arrays.copyOf(bytes, bytes.length / 2);
            else b.patch.accept(bytes);
            Path file = write(tmp.resolve(b.name + ".gguf"), bytes);
            Path npy = tmp.resolve(b.name + ".npy");
            String[][] commands = {
                    {"info", "--model", file.toString(), "--backend", "java"},
                    {"logits", "--model", file.toString(), "--ids", "2,5", "--output", npy.toString(), "--backend", "java"},
                    {"generate", "--model", file.toString(), "--ids", "2,5", "--max-tokens", "2", "--backend", "java"},
                    {"tokenize", "--model", file.toString(), "hi"},
            };
            for (String[] command : commands) {
                boolean modelOnly = b.name.equals("shape") || b.name.equals("pre");
                if ((b.name.equals("shape") || b.name.equals("arch")) && command[0].equals("tokenize")) continue; // the tokenizer alone is fine
                if (b.name.equals("pre") && !command[0].equals("generate") && !command[0].equals("tokenize")) continue; // only they tokenize
                out.reset();
                err.reset();
                String what = b.name + " / " + command[0];
                assertEquals(2, Main.run(command), what + ": " + stderr());
                // (JVM warnings and a fuzzing agent's notes may share stderr when tests run in one JVM)
                String line = stderr().lines().filter(l -> !l.startsWith("WARNING") && !l.startsWith("INFO:")).findFirst().orElse("");
                assertTrue(line.contains(file.toString()) && line.contains(b.problem), what + ": " + stderr());
                assertEquals(1, stderr().lines().filter(l -> !l.startsWith("WARNING") && !l.startsWith("INFO:")).count(), what + ": " + stderr());
                assertFalse(Files.exists(npy), what + ": nothing half-written");
                assertTrue(modelOnly || !stdout().contains("architecture"), what);
            }
        }
    }
}
