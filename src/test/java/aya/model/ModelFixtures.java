package aya.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.List;

/** The HF reference checkpoints made by src/test/python/make_model_fixtures.py (under src/test/resources/model). */
public final class ModelFixtures {

    public static final List<String> NAMES = List.of("f32-tied", "bf16-untied-sharded", "hd128-oldconfig", "f16-eos", "headdim-wide");

    private ModelFixtures() {
    }

    public static Path dir(String name) {
        return Path.of("src/test/resources/model", name);
    }

    public static int[] inputIds(String name) {
        return ints(json(dir(name).resolve("input_ids.json")));
    }

    public static JsonNode greedy(String name) {
        return json(dir(name).resolve("greedy.json"));
    }

    public static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = array.get(i).asInt();
        return out;
    }

    public static JsonNode json(Path p) {
        try {
            return new ObjectMapper().readTree(p.toFile());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static String csv(int[] ids) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < ids.length; i++) {
            if (i > 0) sb.append(',');
            sb.append(ids[i]);
        }
        return sb.toString();
    }
}
