package aya.weights;

import aya.kernels.Quant;
import aya.kernels.WeightType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The on-disk cache of quantized weights: the first load quantizes and writes it, the next maps it (no quantization,
 * file untouched), a changed checkpoint or a damaged cache is rebuilt with a message, an unwritable model directory
 * falls back to the user cache, and with no writable place at all the weights are quantized in memory.
 */
class QuantizedWeightsTest {

    static final String FIXTURE = "src/test/resources/model/bf16-untied-sharded";
    static final List<String> NAMES = List.of("model.embed_tokens.weight", "lm_head.weight",
            "model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.down_proj.weight"); // down_proj: 196 columns

    final ByteArrayOutputStream logBytes = new ByteArrayOutputStream();
    final PrintStream log = new PrintStream(logBytes, true, StandardCharsets.UTF_8);

    String log() {
        return logBytes.toString(StandardCharsets.UTF_8);
    }

    static Path copyModel(Path tmp) throws IOException {
        Path dir = tmp.resolve("model");
        Files.createDirectories(dir);
        try (Stream<Path> files = Files.list(Path.of(FIXTURE))) {
            for (Path f : files.toList()) Files.copy(f, dir.resolve(f.getFileName()));
        }
        return dir;
    }

    QuantizedWeights.Result load(Path dir, Checkpoint c, WeightType type, Path userRoot) {
        return QuantizedWeights.load(dir, c, type, NAMES, log, userRoot);
    }

    @Test
    void firstLoadQuantizesSecondMapsTheCache(@TempDir Path tmp) throws Exception {
        Path dir = copyModel(tmp);
        Path cache = dir.resolve("aya-cache/model-q8_0.safetensors");
        try (Checkpoint c = Checkpoint.open(dir)) {
            QuantizedWeights.Result first = load(dir, c, WeightType.Q8_0, tmp.resolve("user"));
            assertTrue(first.built());
            assertEquals(cache, first.cacheFile());
            // down_proj rows (196) are not whole blocks: it keeps its type
            assertEquals(List.of("lm_head.weight", "model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight"),
                    first.tensors().keySet().stream().sorted().toList());
            // the cached bytes are the source rows quantized
            Tensor src = c.tensor("model.layers.0.self_attn.q_proj.weight");
            Tensor q = first.tensors().get(src.name());
            assertEquals(WeightType.Q8_0, q.weightType());
            assertArrayEquals(src.shape(), q.shape());
            int cols = (int) src.shape()[1];
            long rowBytes = WeightType.Q8_0.rowBytes(cols);
            try (Arena a = Arena.ofConfined()) {
                MemorySegment want = a.allocate(rowBytes);
                for (int r = 0; r < src.shape()[0]; r++) {
                    Quant.quantizeMatrixRow(WeightType.BF16, src.data(), r, cols, WeightType.Q8_0, want, 0, new float[cols]);
                    assertEquals(-1, want.mismatch(q.data().asSlice(r * rowBytes, rowBytes)), "row " + r);
                }
            }
        }
        FileTime written = Files.getLastModifiedTime(cache);
        Files.setLastModifiedTime(cache, FileTime.fromMillis(written.toMillis() - 60_000)); // to see any rewrite
        FileTime before = Files.getLastModifiedTime(cache);
        try (Checkpoint c = Checkpoint.open(dir)) {
            QuantizedWeights.Result second = load(dir, c, WeightType.Q8_0, tmp.resolve("user"));
            assertFalse(second.built(), "the second load maps the cache instead of quantizing");
            assertEquals(before, Files.getLastModifiedTime(cache));
            assertEquals(3, second.tensors().size());
        }
        assertFalse(Files.exists(tmp.resolve("user")), "nothing written to the user cache");
    }

    @Test
    void changedCheckpointRebuildsTheCache(@TempDir Path tmp) throws Exception {
        Path dir = copyModel(tmp);
        try (Checkpoint c = Checkpoint.open(dir)) {
            assertTrue(load(dir, c, WeightType.Q4_0, null).built());
        }
        Path shard = dir.resolve("model-00001-of-00010.safetensors");
        Files.setLastModifiedTime(shard, FileTime.fromMillis(Files.getLastModifiedTime(shard).toMillis() + 5_000));
        try (Checkpoint c = Checkpoint.open(dir)) {
            QuantizedWeights.Result again = load(dir, c, WeightType.Q4_0, null);
            assertTrue(again.built(), "a cache made from other files is rebuilt");
            assertTrue(log().contains("is stale"), log());
        }
        try (Checkpoint c = Checkpoint.open(dir)) {
            assertFalse(load(dir, c, WeightType.Q4_0, null).built(), "and the rebuilt cache is used next time");
        }
    }

    @Test
    void damagedCacheIsRebuiltWithAMessage(@TempDir Path tmp) throws Exception {
        Path dir = copyModel(tmp);
        Path cache = dir.resolve("aya-cache/model-q8_0.safetensors");
        try (Checkpoint c = Checkpoint.open(dir)) {
            load(dir, c, WeightType.Q8_0, null);
        }
        long size = Files.size(cache);
        try (var ch = Files.newByteChannel(cache, StandardOpenOption.WRITE)) {
            ch.truncate(size / 2); // a crash of something else, a full disk...
        }
        try (Checkpoint c = Checkpoint.open(dir)) {
            QuantizedWeights.Result r = load(dir, c, WeightType.Q8_0, null);
            assertTrue(r.built());
            assertTrue(log().contains("is unreadable") && log().contains("truncated"), log());
            assertEquals(size, Files.size(cache));
        }
        Files.writeString(cache, "not a safetensors file at all");
        try (Checkpoint c = Checkpoint.open(dir)) {
            assertTrue(load(dir, c, WeightType.Q8_0, null).built());
        }
        try (Stream<Path> left = Files.list(cache.getParent())) {
            List<String> names = left.map(f -> f.getFileName().toString()).sorted().toList();
            assertEquals(List.of(".model-q8_0.safetensors.lock", "model-q8_0.safetensors"), names, "no temporary files left behind");
        }
    }

    @Test
    void unwritableModelDirUsesTheUserCacheThenMemory(@TempDir Path tmp) throws Exception {
        Path dir = copyModel(tmp);
        Files.writeString(dir.resolve("aya-cache"), "a file where the cache folder would go"); // cannot create the folder
        Path user = tmp.resolve("user-cache");
        try (Checkpoint c = Checkpoint.open(dir)) {
            QuantizedWeights.Result r = load(dir, c, WeightType.Q8_0, user);
            assertTrue(r.built());
            assertEquals(user.resolve(QuantizedWeights.pathHash(dir)).resolve("model-q8_0.safetensors"), r.cacheFile());
        }
        try (Checkpoint c = Checkpoint.open(dir)) {
            assertFalse(load(dir, c, WeightType.Q8_0, user).built(), "found again in the user cache");
        }
        try (Checkpoint c = Checkpoint.open(dir)) {
            QuantizedWeights.Result r = load(dir, c, WeightType.Q8_0, null);
            assertNull(r.cacheFile());
            assertTrue(r.built());
            assertTrue(log().contains("in memory"), log());
            Tensor q = r.tensors().get("model.embed_tokens.weight");
            float[] row = new float[(int) q.shape()[1]];
            Quant.dequantizeRow(WeightType.Q8_0, q.data(), 0, row.length, row, 0);
            Tensor src = c.tensor("model.embed_tokens.weight");
            for (int b = 0; b < row.length / 32; b++) {
                float[] want = new float[32];
                float amax = 0;
                for (int j = 0; j < 32; j++) {
                    want[j] = Float.intBitsToFloat(src.data().getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, b * 32 + j) << 16);
                    amax = Math.max(amax, Math.abs(want[j]));
                }
                for (int j = 0; j < 32; j++) { // Q8_0 is off by at most half a step, d / 2 = amax / 254 (plus d's fp16 rounding)
                    assertEquals(want[j], row[b * 32 + j], amax / 254 + Math.abs(want[j]) * 1e-3 + 1e-7, "embedding weight " + (b * 32 + j));
                }
            }
        }
    }
}
