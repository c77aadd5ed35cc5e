package aya.hub;

import aya.AyaException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.regex.Pattern;

/** Which files of a repo make a runnable model, and checks on file names that come from the network. */
public final class ModelFiles {

    public static final String CONFIG = "config.json";
    public static final String TOKENIZER = "tokenizer.json";
    public static final String WEIGHTS = "model.safetensors";
    public static final String WEIGHTS_INDEX = "model.safetensors.index.json";

    /** Fetched when the repo has them; the weights come after (the index names its shards). */
    public static final List<String> SMALL_FILES = List.of(CONFIG, "generation_config.json", TOKENIZER,
            "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja");

    private static final Pattern SEGMENT = Pattern.compile("[A-Za-z0-9._+\\-=@,\\[\\]() ]+");

    private ModelFiles() {}

    /** What a snapshot directory still lacks to run: config, tokenizer, and every weights shard. */
    public static List<String> missing(Path dir) {
        List<String> missing = new ArrayList<>();
        for (String f : List.of(CONFIG, TOKENIZER)) if (!Files.isRegularFile(dir.resolve(f))) missing.add(f);
        Path index = dir.resolve(WEIGHTS_INDEX);
        if (Files.isRegularFile(index)) {
            for (String shard : shardsOf(index)) if (!Files.isRegularFile(dir.resolve(shard))) missing.add(shard);
        } else if (!Files.isRegularFile(dir.resolve(WEIGHTS))) {
            missing.add(WEIGHTS + " (or " + WEIGHTS_INDEX + " and its shards)");
        }
        return missing;
    }

    /** The distinct shard files named by a safetensors index's weight_map, in name order. */
    public static List<String> shardsOf(Path indexFile) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(indexFile.toFile());
        } catch (IOException e) {
            throw new AyaException(indexFile + ": not a readable JSON safetensors index (" + oneLine(e) + ")", e);
        }
        JsonNode map = root == null ? null : root.get("weight_map");
        if (map == null || !map.isObject() || map.isEmpty()) {
            throw new AyaException(indexFile + ": no weight_map object naming the shards");
        }
        TreeSet<String> shards = new TreeSet<>();
        for (JsonNode shard : map) {
            if (!shard.isTextual()) throw new AyaException(indexFile + ": weight_map values must be file names, got " + shard);
            shards.add(checkName(shard.textValue(), indexFile.getFileName().toString()));
        }
        return List.copyOf(shards);
    }

    /**
     * A repo file name must stay inside the snapshot: relative, '/'-separated, no '..' nor empty segments.
     * {@code source} says where the name came from, for the error message.
     */
    public static String checkName(String name, String source) {
        boolean ok = name != null && !name.isEmpty() && name.length() < 512 && !name.startsWith("/");
        if (ok) {
            for (String segment : name.split("/", -1)) {
                if (segment.isEmpty() || segment.equals(".") || segment.equals("..") || !SEGMENT.matcher(segment).matches()) {
                    ok = false;
                    break;
                }
            }
        }
        if (!ok) throw new AyaException(source + " names an unsafe file '" + name + "' (must be a plain relative path)");
        return name;
    }

    static String oneLine(Exception e) {
        String m = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        int nl = m.indexOf('\n');
        return nl < 0 ? m : m.substring(0, nl);
    }
}
