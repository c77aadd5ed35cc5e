package aya.hub;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Our cache must look exactly like the one huggingface_hub writes. The reference is
 * src/test/resources/hub/hf_hub_layout.json, made by src/test/python/make_hub_layout_fixture.py running
 * huggingface_hub's snapshot_download against a loopback hub serving this same repo (same bytes, same commit).
 */
class HubLayoutCompatibilityTest {

    // the repo of make_hub_layout_fixture.py, byte for byte
    private static final String COMMIT = "0123456789abcdef0123456789abcdef01234567";

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void ourDownloadLeavesTheLayoutHuggingfaceHubLeaves(@TempDir Path cache) throws IOException {
        JsonNode reference;
        try (InputStream in = getClass().getResourceAsStream("/hub/hf_hub_layout.json")) {
            reference = new ObjectMapper().readTree(in);
        }
        assertEquals(COMMIT, reference.get("commit").asText());

        byte[] weights = new byte[256 * 300];
        for (int i = 0; i < weights.length; i++) weights[i] = (byte) (i % 256);
        try (FakeHub hub = new FakeHub()) {
            hub.repo("Org/Model", COMMIT)
                    .file("config.json", utf8("{\"model_type\": \"cohere2\"}\n"))
                    .file("generation_config.json", utf8("{\"do_sample\": true, \"temperature\": 0.3}\n"))
                    .file("tokenizer.json", utf8("{\"model\": {\"type\": \"BPE\"}}\n"))
                    .file("tokenizer_config.json", utf8("{\"eos_token\": \"<EOS_TOKEN>\"}\n"))
                    .file("special_tokens_map.json", utf8("{}\n"))
                    .file("chat_template.jinja", utf8("{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}\n"))
                    .lfsFile("model.safetensors", weights)
                    .file("README.md", utf8("# a model\n"));
            HubSettings settings = new HubSettings(cache, hub.endpoint(), null, cache.resolve("token"), false);
            Path snapshot = new ModelLocator(settings, new PrintStream(OutputStream.nullOutputStream()), false)
                    .download("Org/Model", "main");
            assertEquals(cache.resolve(reference.get("snapshot").asText()), snapshot);
        }

        List<String> expected = new ArrayList<>();
        for (JsonNode e : reference.get("entries")) {
            String path = e.get("path").asText();
            if (path.equals("trees") || path.startsWith("trees/")) continue; // huggingface_hub's own listing cache
            expected.add(describe(path, e.get("kind").asText(), text(e, "target"), text(e, "sha256"), text(e, "text")));
        }
        assertEquals(expected, layout(cache.resolve("models--Org--Model")));
    }

    private static String text(JsonNode e, String field) {
        return e.has(field) ? e.get(field).asText() : null;
    }

    private static String describe(String path, String kind, String target, String sha256, String text) {
        return path + " " + kind + (target != null ? " -> " + target : "") + (sha256 != null ? " sha256=" + sha256 : "")
                + (text != null ? " text=" + text : "");
    }

    private static List<String> layout(Path root) throws IOException {
        List<String> out = new ArrayList<>();
        try (Stream<Path> all = Files.walk(root)) {
            for (Path p : all.sorted().toList()) {
                if (p.equals(root)) continue;
                String rel = root.relativize(p).toString();
                if (Files.isSymbolicLink(p)) {
                    out.add(describe(rel, "symlink", Files.readSymbolicLink(p).toString(), null, null));
                } else if (Files.isDirectory(p)) {
                    out.add(describe(rel, "dir", null, null, null));
                } else {
                    byte[] data = Files.readAllBytes(p);
                    out.add(describe(rel, "file", null, FakeHub.sha256(data),
                            rel.startsWith("refs/") ? new String(data, StandardCharsets.UTF_8) : null));
                }
            }
        }
        return out;
    }
}
