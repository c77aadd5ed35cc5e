package aya.model;

import aya.AyaException;
import aya.cli.Main;
import aya.config.ModelConfig;
import aya.kernels.JavaKernels;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** Context and memory are checked before the KV cache and activations are allocated. */
class MemoryLimitsTest {

    @Test
    void stateBytesCountsEveryBufferOfTheState() {
        // f32-tied: vocab 320, D 72, I 150, 4 heads x 18, 2 KV heads (kvd 36), layers S S S G, window 8
        ModelConfig c = ModelConfig.load(ModelFixtures.dir("f32-tied"));
        int context = 100, block = 16, threads = 2;
        long slidingKv = 3 * 2 * 23 * 36;     // ring of min(100, 8 + 16 - 1) = 23 slots, K and V
        long globalKv = 2 * 100 * 36;         // the global layer holds the whole context
        long activations = 16 * (4 * 72 + 2 * 72 + 2 * 36 + 2 * 150 + 18); // x xb attOut mlpOut, q att, k v, gate up, cos sin
        long scores = 2 * (100 + 15);         // one row per worker, rounded up for alignment (upper bound)
        long logits = 32 * 320;               // HEAD_ROWS x vocab
        assertEquals(4 * (slidingKv + globalKv + activations + scores + logits),
                MemoryLimits.stateBytes(c, context, block, threads));
    }

    @Test
    void theKvPartMatchesWhatTheStateAllocates() {
        try (AyaForward model = AyaForward.load(ModelFixtures.dir("f32-tied"), new JavaKernels(), 1);
             AyaForward.State s = model.newState(100, 16)) {
            ModelConfig c = model.config();
            long withoutKv = MemoryLimits.stateBytes(c, 100, 16, 1) - s.kvCacheBytes();
            long oneTokenLess = MemoryLimits.stateBytes(c, 99, 16, 1);
            // one more token of context costs exactly one global layer's K and V row (plus at most the score row)
            long perToken = MemoryLimits.stateBytes(c, 100, 16, 1) - oneTokenLess;
            assertEquals(model.kvBytesPerToken() + 4, perToken);
            assertTrue(withoutKv > 0);
        }
    }

    @Test
    void aStateThatDoesNotFitIsAOneLineError() {
        AyaException e = assertThrows(AyaException.class, () -> MemoryLimits.checkFits(10L << 30, 1L << 30, 123456));
        assertTrue(e.getMessage().contains("123456") && e.getMessage().contains("--context"), e.getMessage());
        assertFalse(e.getMessage().contains("\n"));
        MemoryLimits.checkFits(1L << 30, 1L << 30, 1); // exactly fits
        long available = MemoryLimits.availableBytes();
        assertTrue(available > 0 && available <= totalPhysical(), "MemAvailable " + available);
    }

    static long totalPhysical() {
        var os = (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();
        return os.getTotalMemorySize();
    }

    /** The f32-tied checkpoint with max_position_embeddings raised to the largest int, so only memory limits the context. */
    static Path unlimitedCopy(Path tmp) throws IOException {
        Path src = ModelFixtures.dir("f32-tied");
        Files.copy(src.resolve("model.safetensors"), tmp.resolve("model.safetensors"));
        ObjectNode config = (ObjectNode) new ObjectMapper().readTree(src.resolve("config.json").toFile());
        config.put("max_position_embeddings", Integer.MAX_VALUE);
        Files.writeString(tmp.resolve("config.json"), config.toString());
        return tmp;
    }

    @Test
    void aHugeContextIsRefusedBeforeAllocating(@TempDir Path tmp) throws IOException {
        Path dir = unlimitedCopy(tmp);
        try (AyaForward model = AyaForward.load(dir, new JavaKernels(), 1)) {
            // 2e9 tokens x 288 bytes of global KV per token = 576 GB: far more than any test machine has
            AyaException e = assertThrows(AyaException.class, () -> model.newState(2_000_000_000));
            assertTrue(e.getMessage().contains("memory"), e.getMessage());
            try (AyaForward.State s = model.newState(4096)) { // a sane context still works
                assertEquals(4096, s.context());
            }
        }
    }

    @Test
    void theCliRefusesAHugeContextWithOneLineAndExitCode2(@TempDir Path tmp) throws IOException {
        Path dir = unlimitedCopy(tmp);
        PrintStream oldErr = System.err;
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        try {
            int code = Main.run("logits", "--model", dir.toString(), "--ids", "1,2,3", "--context", "2000000000",
                    "--output", tmp.resolve("o.npy").toString(), "--backend", "java");
            assertEquals(Main.EXIT_USER_ERROR, code);
            String text = err.toString(StandardCharsets.UTF_8);
            assertTrue(text.startsWith("aya: ") && text.contains("memory") && text.strip().lines().count() == 1, text);
            assertFalse(Files.exists(tmp.resolve("o.npy")));

            err.reset();
            // the shipped fixture says max_position_embeddings 128: a larger explicit --context is refused, not capped
            code = Main.run("logits", "--model", ModelFixtures.dir("f32-tied").toString(), "--ids", "1,2,3",
                    "--context", "1000", "--output", tmp.resolve("o.npy").toString(), "--backend", "java");
            assertEquals(Main.EXIT_USER_ERROR, code);
            text = err.toString(StandardCharsets.UTF_8);
            assertTrue(text.contains("max_position_embeddings (128)") && text.strip().lines().count() == 1, text);
        } finally {
            System.setErr(oldErr);
        }
    }
}
