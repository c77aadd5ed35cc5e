package aya.weights;

import aya.AyaException;
import aya.kernels.JavaKernels;
import aya.model.AyaForward;
import aya.model.ModelFixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/** One test per malformed-input class: each must fail with one line naming the file or tensor and the problem. */
class SafetensorsTest {

    /** A safetensors file from a header JSON string and a data section (test-only bytes, not a production writer). */
    static byte[] file(String header, byte[] data) {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        return file(h, h.length, data);
    }

    static byte[] file(byte[] header, long declaredLength, byte[] data) {
        ByteBuffer b = ByteBuffer.allocate(8 + header.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(declaredLength).put(header).put(data);
        return b.array();
    }

    static AyaException opening(Path dir, String name, byte[] bytes) throws IOException {
        Path p = dir.resolve(name);
        Files.write(p, bytes);
        try (Arena arena = Arena.ofShared()) {
            AyaException e = assertThrows(AyaException.class, () -> SafetensorsFile.open(p, arena));
            assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
            assertTrue(e.getMessage().contains(p.toString()), "names the file: " + e.getMessage());
            return e;
        }
    }

    static void assertMentions(AyaException e, String... words) {
        for (String w : words) assertTrue(e.getMessage().contains(w), "'" + w + "' in: " + e.getMessage());
    }

    @Test
    void readsAValidFileInPlace(@TempDir Path dir) throws IOException {
        ByteBuffer data = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
        data.putFloat(1).putFloat(2).putFloat(3).putFloat(4).putShort((short) 0x3f80).putShort((short) 0xc000).putInt(0);
        Path p = dir.resolve("ok.safetensors");
        Files.write(p, file("{\"__metadata__\": {\"format\": \"pt\"}, \"a\": {\"dtype\": \"F32\", \"shape\": [2, 2], \"data_offsets\": [0, 16]},"
                + " \"b\": {\"dtype\": \"BF16\", \"shape\": [2], \"data_offsets\": [16, 20]}}", data.array()));
        try (Arena arena = Arena.ofShared()) {
            SafetensorsFile f = SafetensorsFile.open(p, arena);
            assertEquals(2, f.tensors().size());
            Tensor a = f.tensors().get("a");
            assertArrayEquals(new long[] {2, 2}, a.shape());
            assertEquals(3f, a.data().getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 2));
            assertEquals((short) 0xc000, f.tensors().get("b").data().get(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 2));
            assertThrows(AyaException.class, () -> a.expectShape(4));
        }
    }

    @Test
    void emptyOrTinyFile(@TempDir Path dir) throws IOException {
        assertMentions(opening(dir, "empty.safetensors", new byte[0]), "truncated");
        assertMentions(opening(dir, "five.safetensors", new byte[5]), "truncated");
    }

    @Test
    void headerLengthBeyondTheBoundOrTheFile(@TempDir Path dir) throws IOException {
        byte[] h = "{}".getBytes(StandardCharsets.UTF_8);
        assertMentions(opening(dir, "huge.safetensors", file(h, 1L << 40, new byte[0])), "header length");
        assertMentions(opening(dir, "negative.safetensors", file(h, -1, new byte[0])), "header length");
        assertMentions(opening(dir, "past.safetensors", file(h, 4000, new byte[0])), "truncated");
    }

    @Test
    void headerNotJsonNotUtf8NotAnObject(@TempDir Path dir) throws IOException {
        assertMentions(opening(dir, "json.safetensors", file("{\"a\": {\"dtype\": ", new byte[0])), "not valid JSON");
        assertMentions(opening(dir, "utf8.safetensors", file(new byte[] {'{', (byte) 0xff, '}'}, 3, new byte[0])), "UTF-8");
        assertMentions(opening(dir, "array.safetensors", file("[1, 2]", new byte[0])), "not a JSON object");
        assertMentions(opening(dir, "entry.safetensors", file("{\"a\": 5}", new byte[0])), "'a'");
    }

    @Test
    void duplicateTensorNames(@TempDir Path dir) throws IOException {
        assertMentions(opening(dir, "dup.safetensors",
                file("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                        + " \"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", new byte[8])), "'w'");
    }

    @Test
    void unknownDtypeIsNamed(@TempDir Path dir) throws IOException {
        assertMentions(opening(dir, "dtype.safetensors",
                file("{\"w\": {\"dtype\": \"Q7\", \"shape\": [2], \"data_offsets\": [0, 2]}}", new byte[2])), "'w'", "Q7");
    }

    @Test
    void offsetsOutsideTheDataSection(@TempDir Path dir) throws IOException {
        assertMentions(opening(dir, "past-end.safetensors",
                file("{\"w\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", new byte[8])), "'w'", "past the data section");
        assertMentions(opening(dir, "reversed.safetensors",
                file("{\"w\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [8, 4]}}", new byte[8])), "'w'", "data_offsets");
        assertMentions(opening(dir, "missing.safetensors",
                file("{\"w\": {\"dtype\": \"F32\", \"shape\": [1]}}", new byte[8])), "'w'", "data_offsets");
    }

    @Test
    void overlappingTensors(@TempDir Path dir) throws IOException {
        assertMentions(opening(dir, "overlap.safetensors",
                file("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                        + " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}", new byte[12])), "'a'", "'b'", "overlap");
    }

    @Test
    void shapeTimesDtypeMustEqualTheByteLength(@TempDir Path dir) throws IOException {
        assertMentions(opening(dir, "size.safetensors",
                file("{\"w\": {\"dtype\": \"BF16\", \"shape\": [3, 2], \"data_offsets\": [0, 8]}}", new byte[8])), "'w'", "needs 12");
        assertMentions(opening(dir, "overflow.safetensors",
                file("{\"w\": {\"dtype\": \"F32\", \"shape\": [4611686018427387904, 4], \"data_offsets\": [0, 8]}}", new byte[8])), "'w'");
    }

    // ----------------------------------------------------------------- whole checkpoints (broken copies of a fixture)

    static Path copyFixture(String name, Path to) throws IOException {
        Path src = ModelFixtures.dir(name);
        try (Stream<Path> files = Files.list(src)) {
            for (Path f : (Iterable<Path>) files::iterator) Files.copy(f, to.resolve(f.getFileName()));
        }
        return to;
    }

    static AyaException loading(Path dir) {
        AyaException e = assertThrows(AyaException.class, () -> AyaForward.load(dir, new JavaKernels(), 1).close());
        assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
        return e;
    }

    @Test
    void truncatedCheckpointFile(@TempDir Path dir) throws IOException {
        copyFixture("f32-tied", dir);
        Path f = dir.resolve("model.safetensors");
        byte[] all = Files.readAllBytes(f);
        Files.write(f, java.util.Arrays.copyOf(all, all.length - 100));
        assertMentions(loading(dir), "model.safetensors", "truncated");
    }

    @Test
    void missingTensorIsNamed(@TempDir Path dir) throws IOException {
        copyFixture("f32-tied", dir);
        rewriteHeader(dir.resolve("model.safetensors"), "model.layers.2.mlp.up_proj.weight", "model.layers.2.mlp.uq_proj.weight");
        assertMentions(loading(dir), "missing tensor 'model.layers.2.mlp.up_proj.weight'");
    }

    @Test
    void wrongShapeNamesTensorExpectedAndFound(@TempDir Path dir) throws IOException {
        copyFixture("f32-tied", dir);
        // claim layer 1 q_proj is [81, 64] instead of [72, 72]: same bytes, so only the shape check can catch it
        rewriteHeader(dir.resolve("model.safetensors"), "\"model.layers.1.self_attn.q_proj.weight\":{\"dtype\":\"F32\",\"shape\":[72,72]",
                "\"model.layers.1.self_attn.q_proj.weight\":{\"dtype\":\"F32\",\"shape\":[81,64]");
        assertMentions(loading(dir), "model.layers.1.self_attn.q_proj.weight", "[81, 64]", "expected [72, 72]");
    }

    @Test
    void unsupportedDtypeOfAWeight(@TempDir Path dir) throws IOException {
        copyFixture("f32-tied", dir);
        rewriteHeader(dir.resolve("model.safetensors"), "\"model.norm.weight\":{\"dtype\":\"F32\"", "\"model.norm.weight\":{\"dtype\":\"I32\"");
        assertMentions(loading(dir), "model.norm.weight", "I32");
    }

    @Test
    void untiedConfigWithoutLmHead(@TempDir Path dir) throws IOException {
        copyFixture("f32-tied", dir);
        Path cfg = dir.resolve("config.json");
        Files.writeString(cfg, Files.readString(cfg).replace("\"tie_word_embeddings\": true", "\"tie_word_embeddings\": false"));
        assertMentions(loading(dir), "missing tensor 'lm_head.weight'");
    }

    @Test
    void configDisagreeingWithTheWeights(@TempDir Path dir) throws IOException {
        copyFixture("f32-tied", dir);
        Path cfg = dir.resolve("config.json");
        Files.writeString(cfg, Files.readString(cfg).replace("\"vocab_size\": 320", "\"vocab_size\": 400"));
        assertMentions(loading(dir), "model.embed_tokens.weight", "expected [400, 72]");
    }

    @Test
    void noWeightsInTheDirectory(@TempDir Path dir) throws IOException {
        Files.copy(ModelFixtures.dir("f32-tied").resolve("config.json"), dir.resolve("config.json"));
        assertMentions(loading(dir), "model.safetensors");
        Path notADir = dir.resolve("config.json");
        assertMentions(loading(notADir), "not a model directory");
    }

    @Test
    void indexNamingAMissingShard(@TempDir Path dir) throws IOException {
        copyFixture("bf16-untied-sharded", dir);
        Files.delete(dir.resolve("model-00003-of-00010.safetensors"));
        assertMentions(loading(dir), "model.safetensors.index.json", "model-00003-of-00010.safetensors", "missing");
    }

    @Test
    void indexPointingAtTheWrongShard(@TempDir Path dir) throws IOException {
        copyFixture("bf16-untied-sharded", dir);
        Path index = dir.resolve("model.safetensors.index.json");
        String text = Files.readString(index);
        String key = "\"model.norm.weight\": \"";
        int at = text.indexOf(key);
        assertTrue(at > 0, "fixture index lists model.norm.weight");
        int end = text.indexOf('"', at + key.length());
        String shard = text.substring(at + key.length(), end);
        String other = shard.equals("model-00001-of-00010.safetensors") ? "model-00002-of-00010.safetensors" : "model-00001-of-00010.safetensors";
        Files.writeString(index, text.replace(key + shard, key + other));
        assertMentions(loading(dir), "model.norm.weight", other);
    }

    @Test
    void singleFileWinsOverAnIndexLikeTransformers(@TempDir Path dir) throws IOException {
        copyFixture("f32-tied", dir);
        Files.writeString(dir.resolve("model.safetensors.index.json"), "{\"weight_map\": {\"x\": \"missing.safetensors\"}}");
        AyaForward.load(dir, new JavaKernels(), 1).close();
    }

    @Test
    void indexNotJson(@TempDir Path dir) throws IOException {
        copyFixture("bf16-untied-sharded", dir);
        Files.writeString(dir.resolve("model.safetensors.index.json"), "{\"weight_map\": ");
        assertMentions(loading(dir), "model.safetensors.index.json", "not valid JSON");
        Files.writeString(dir.resolve("model.safetensors.index.json"), "{\"weight_map\": {\"a\": \"../x\"}}");
        assertMentions(loading(dir), "bad shard name");
    }

    /** Replaces text inside the JSON header of a safetensors file, keeping its length (pads with spaces). */
    static void rewriteHeader(Path file, String from, String to) throws IOException {
        byte[] all = Files.readAllBytes(file);
        ByteBuffer b = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN);
        int n = (int) b.getLong(0);
        String header = new String(all, 8, n, StandardCharsets.UTF_8);
        assertTrue(header.contains(from), "header contains " + from);
        String changed = header.replace(from, to);
        byte[] h = changed.getBytes(StandardCharsets.UTF_8);
        assertTrue(h.length <= n, "rewritten header fits");
        byte[] padded = new byte[n];
        java.util.Arrays.fill(padded, (byte) ' ');
        System.arraycopy(h, 0, padded, 0, h.length);
        System.arraycopy(padded, 0, all, 8, n);
        Files.write(file, all);
    }
}
