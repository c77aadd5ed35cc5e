package aya.fuzz;

import aya.weights.Checkpoint;
import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/** Fuzzes model.safetensors.index.json next to two valid shards (a.safetensors holds "x", b.safetensors holds "y"). */
class CheckpointIndexFuzzTest {

    static Path dir;

    @BeforeAll
    static void makeDir() {
        dir = FuzzSupport.scratchDir("index");
        FuzzSupport.write(dir.resolve("a.safetensors"), shard("x"));
        FuzzSupport.write(dir.resolve("b.safetensors"), shard("y"));
    }

    @AfterAll
    static void removeDir() {
        FuzzSupport.deleteTree(dir);
    }

    static byte[] shard(String tensor) {
        byte[] h = ("{\"" + tensor + "\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}").getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(8 + h.length + 8).order(ByteOrder.LITTLE_ENDIAN)
                .putLong(h.length).put(h).putFloat(1f).putFloat(2f).array();
    }

    @FuzzTest(maxDuration = "10s")
    @DictionaryEntries({"\"weight_map\"", "\"metadata\"", "\"a.safetensors\"", "\"b.safetensors\"", "\"x\"", "\"y\"",
            "\"../a.safetensors\"", "\"/etc/passwd\"", "\"\"", "null", "{}", "[]"})
    void index(byte[] input) {
        FuzzSupport.write(dir.resolve(Checkpoint.INDEX_FILE), input);
        FuzzSupport.onlyUserErrors(() -> {
            try (Checkpoint c = Checkpoint.open(dir)) {
                c.tensors().size();
            }
        });
    }
}
