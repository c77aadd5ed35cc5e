package aya.weights;

import aya.cli.Main;
import aya.weights.RandomCheckpoint.DType;
import aya.weights.RandomCheckpoint.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

class RandomCheckpointTest {

    @TempDir
    Path tmp;

    private static final ObjectMapper JSON = new ObjectMapper();
    // small but with every structural feature: GQA, a global layer (index 3), two shards
    private static final Shape SMALL = new Shape(64, 96, 5, 4, 2, 16, 300);

    @Test
    void fullShapeMatchesTinyAya() {
        // facts from /work/shared/TINY_AYA.md (checked against the real checkpoint's index)
        List<RandomCheckpoint.TensorSpec> specs = RandomCheckpoint.tensors(Shape.TINY_AYA);
        assertEquals(290, specs.size());
        long params = specs.stream().mapToLong(RandomCheckpoint.TensorSpec::elements).sum();
        assertEquals(3_349_227_520L, params);
        assertEquals(2 * 3_349_227_520L, RandomCheckpoint.weightBytes(Shape.TINY_AYA, DType.BF16));
        Map<String, long[]> shapes = new HashMap<>();
        for (var s : specs) shapes.put(s.name(), s.shape());
        assertArrayEquals(new long[]{262144, 2048}, shapes.get("model.embed_tokens.weight"));
        assertArrayEquals(new long[]{2048, 2048}, shapes.get("model.layers.35.self_attn.q_proj.weight"));
        assertArrayEquals(new long[]{512, 2048}, shapes.get("model.layers.0.self_attn.k_proj.weight"));
        assertArrayEquals(new long[]{512, 2048}, shapes.get("model.layers.7.self_attn.v_proj.weight"));
        assertArrayEquals(new long[]{2048, 2048}, shapes.get("model.layers.1.self_attn.o_proj.weight"));
        assertArrayEquals(new long[]{11008, 2048}, shapes.get("model.layers.2.mlp.gate_proj.weight"));
        assertArrayEquals(new long[]{11008, 2048}, shapes.get("model.layers.2.mlp.up_proj.weight"));
        assertArrayEquals(new long[]{2048, 11008}, shapes.get("model.layers.2.mlp.down_proj.weight"));
        assertArrayEquals(new long[]{2048}, shapes.get("model.norm.weight"));
        assertFalse(shapes.containsKey("lm_head.weight"), "tied head");

        Map<String, Object> c = RandomCheckpoint.config(Shape.TINY_AYA, DType.BF16);
        JsonNode config = JSON.valueToTree(c);
        assertEquals("Cohere2ForCausalLM", config.get("architectures").get(0).asText());
        assertEquals("cohere2", config.get("model_type").asText());
        assertEquals(50000.0, config.get("rope_theta").asDouble());
        assertEquals(1.0, config.get("logit_scale").asDouble());
        assertEquals(4096, config.get("sliding_window").asInt());
        assertEquals(262144, config.get("vocab_size").asInt());
        assertEquals(1e-5, config.get("layer_norm_eps").asDouble());
        assertFalse(config.has("tie_word_embeddings"), "absent in the original: defaults to tied");
        JsonNode types = config.get("layer_types");
        assertEquals(36, types.size());
        for (int i = 0; i < 36; i++) {
            boolean global = Set.of(3, 7, 11, 15, 19, 23, 27, 31, 35).contains(i);
            assertEquals(global ? "full_attention" : "sliding_attention", types.get(i).asText(), "layer " + i);
        }
    }

    @Test
    void writesHfLayoutThatReadsBack() throws IOException {
        Path out = tmp.resolve("model");
        RandomCheckpoint.write(out, SMALL, DType.BF16, 7, 2);
        try (Stream<Path> files = Files.list(out)) {
            assertEquals(new TreeSet<>(List.of("config.json", "generation_config.json", "model.safetensors.index.json",
                            "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")),
                    new TreeSet<>(files.map(p -> p.getFileName().toString()).toList()));
        }
        try (Stream<Path> siblings = Files.list(tmp)) {
            assertEquals(1, siblings.count(), "no temporary directory left");
        }
        JsonNode config = JSON.readTree(out.resolve("config.json").toFile());
        assertEquals(64, config.get("hidden_size").asInt());
        assertEquals(5, config.get("num_hidden_layers").asInt());
        assertEquals("bfloat16", config.get("torch_dtype").asText());
        assertEquals(3, JSON.readTree(out.resolve("generation_config.json").toFile()).get("eos_token_id").asInt());

        JsonNode index = JSON.readTree(out.resolve("model.safetensors.index.json").toFile());
        JsonNode weightMap = index.get("weight_map");
        List<RandomCheckpoint.TensorSpec> specs = RandomCheckpoint.tensors(SMALL);
        assertEquals(specs.size(), weightMap.size());
        assertEquals(RandomCheckpoint.weightBytes(SMALL, DType.BF16), index.get("metadata").get("total_size").asLong());

        Map<String, Header> headers = new HashMap<>();
        for (String shard : List.of("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")) {
            headers.put(shard, Header.read(out.resolve(shard)));
            assertFalse(headers.get(shard).tensors.isEmpty(), shard + " is empty");
        }
        double sum = 0, sumSq = 0;
        long count = 0;
        for (var spec : specs) {
            String shard = weightMap.get(spec.name()).asText();
            Header h = headers.get(shard);
            JsonNode t = h.tensors.get(spec.name());
            assertNotNull(t, spec.name() + " missing from " + shard);
            assertEquals("BF16", t.get("dtype").asText());
            assertEquals(java.util.Arrays.toString(spec.shape()).replace(" ", ""), t.get("shape").toString());
            ByteBuffer data = h.data(t);
            assertEquals(spec.elements() * 2, data.remaining());
            while (data.hasRemaining()) {
                float v = Float.intBitsToFloat((data.getShort() & 0xFFFF) << 16);
                if (spec.isNorm()) {
                    assertEquals(1.0f, v, spec.name());
                } else {
                    assertTrue(Math.abs(v) < 0.08f, spec.name() + " value " + v);
                    sum += v;
                    sumSq += (double) v * v;
                    count++;
                }
            }
        }
        double mean = sum / count;
        double sd = Math.sqrt(sumSq / count - mean * mean);
        assertEquals(0.0, mean, 0.001);
        assertEquals(0.02, sd, 0.0005);
    }

    @Test
    void sameSeedSameBytesWhateverTheThreadCountOtherSeedDiffers() throws IOException {
        Path a = tmp.resolve("a"), b = tmp.resolve("b"), c = tmp.resolve("c");
        RandomCheckpoint.write(a, SMALL, DType.F32, 1, 1);
        RandomCheckpoint.write(b, SMALL, DType.F32, 1, 2);
        RandomCheckpoint.write(c, SMALL, DType.F32, 2, 2);
        String shard = "model-00001-of-00002.safetensors";
        assertArrayEquals(Files.readAllBytes(a.resolve(shard)), Files.readAllBytes(b.resolve(shard)));
        assertFalse(java.util.Arrays.equals(Files.readAllBytes(a.resolve(shard)), Files.readAllBytes(c.resolve(shard))));
        Header f32 = Header.read(a.resolve(shard));
        assertEquals("F32", f32.tensors.get("model.embed_tokens.weight").get("dtype").asText());
    }

    @Test
    void f16WeightsAndNorms() throws IOException {
        Path out = tmp.resolve("f16");
        RandomCheckpoint.write(out, SMALL, DType.F16, 3, 2);
        Header h = Header.read(out.resolve("model-00002-of-00002.safetensors"));
        JsonNode norm = h.tensors.get("model.norm.weight");
        assertEquals("F16", norm.get("dtype").asText());
        ByteBuffer data = h.data(norm);
        assertEquals(Float.floatToFloat16(1f), data.getShort());
    }

    @Test
    void bf16RoundsToNearestEven() {
        assertEquals(0x3F80, RandomCheckpoint.bf16Bits(1.0f));
        assertEquals(0x3F80, RandomCheckpoint.bf16Bits(Float.intBitsToFloat(0x3F808000))); // tie: stays even
        assertEquals(0x3F82, RandomCheckpoint.bf16Bits(Float.intBitsToFloat(0x3F818000))); // tie: rounds up to even
        assertEquals(0x3F81, RandomCheckpoint.bf16Bits(Float.intBitsToFloat(0x3F808001)));
        assertEquals(0xC000, RandomCheckpoint.bf16Bits(-2.0f));
    }

    @Test
    void cliRefusesNonEmptyOutputAndBadFlagsWithExitCode2() throws IOException {
        Path full = Files.createDirectories(tmp.resolve("full"));
        Files.writeString(full.resolve("keep.txt"), "mine");
        assertEquals(Main.EXIT_USER_ERROR, Main.run("init-random", "--output", full.toString(), "--layers", "1",
                "--hidden", "32", "--intermediate", "32", "--heads", "2", "--kv-heads", "1", "--head-dim", "16",
                "--vocab", "10"));
        assertEquals("mine", Files.readString(full.resolve("keep.txt")));
        Path file = Files.writeString(tmp.resolve("afile"), "x");
        assertEquals(Main.EXIT_USER_ERROR, Main.run("init-random", "--output", file.toString()));
        Path fresh = tmp.resolve("fresh");
        assertEquals(Main.EXIT_USER_ERROR, Main.run("init-random", "--output", fresh.toString(), "--dtype", "int3"));
        assertEquals(Main.EXIT_USER_ERROR, Main.run("init-random", "--output", fresh.toString(), "--layers", "0"));
        assertEquals(Main.EXIT_USER_ERROR, Main.run("init-random", "--output", fresh.toString(), "--heads", "3"));
        assertFalse(Files.exists(fresh), "nothing written on a user error");
        // an existing empty directory is fine
        Path empty = Files.createDirectories(tmp.resolve("empty"));
        assertEquals(0, Main.run("init-random", "--output", empty.toString(), "--layers", "1", "--hidden", "32",
                "--intermediate", "32", "--heads", "2", "--kv-heads", "1", "--head-dim", "16", "--vocab", "10"));
        assertTrue(Files.exists(empty.resolve("model-00002-of-00002.safetensors")));
    }

    /** A minimal safetensors header reader, independent of the code under test. */
    record Header(Map<String, JsonNode> tensors, ByteBuffer file, long dataStart) {
        static Header read(Path path) throws IOException {
            byte[] bytes = Files.readAllBytes(path);
            ByteBuffer buf = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
            long len = buf.getLong(0);
            JsonNode json = JSON.readTree(new String(bytes, 8, (int) len, StandardCharsets.UTF_8));
            Map<String, JsonNode> tensors = new HashMap<>();
            for (Iterator<String> it = json.fieldNames(); it.hasNext(); ) {
                String name = it.next();
                if (!name.equals("__metadata__")) tensors.put(name, json.get(name));
            }
            return new Header(tensors, buf, 8 + len);
        }

        ByteBuffer data(JsonNode tensor) {
            int start = (int) (dataStart + tensor.get("data_offsets").get(0).asLong());
            int end = (int) (dataStart + tensor.get("data_offsets").get(1).asLong());
            return file.slice(start, end - start).order(ByteOrder.LITTLE_ENDIAN);
        }
    }
}
