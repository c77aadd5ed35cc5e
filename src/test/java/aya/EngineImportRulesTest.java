package aya;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/** Layering of the engine packages: cli -> server -> generation -> model -> kernels; config and weights sit below model. */
class EngineImportRulesTest {

    static final Map<String, List<String>> FORBIDDEN = Map.of(
            "kernels", List.of("aya.model", "aya.generation", "aya.cli", "aya.config", "aya.weights", "aya.tokenizer", "aya.sampling", "aya.hub"),
            "weights", List.of("aya.model", "aya.generation", "aya.cli", "aya.config"),
            "config", List.of("aya.model", "aya.generation", "aya.cli", "aya.weights", "aya.kernels"),
            "model", List.of("aya.generation", "aya.cli", "aya.tokenizer", "aya.sampling", "aya.hub", "aya.server"),
            "generation", List.of("aya.cli", "aya.server"),
            "server", List.of("aya.cli", "aya.model", "aya.kernels"));

    @Test
    void packagesImportOnlyDownwards() throws IOException {
        List<String> violations = new ArrayList<>();
        for (var rule : FORBIDDEN.entrySet()) {
            Path dir = Path.of("src/main/java/aya", rule.getKey());
            if (!Files.isDirectory(dir)) continue;
            try (Stream<Path> files = Files.walk(dir)) {
                for (Path f : (Iterable<Path>) files.filter(p -> p.toString().endsWith(".java"))::iterator) {
                    for (String line : Files.readAllLines(f)) {
                        String l = line.strip();
                        if (!l.startsWith("import ")) continue;
                        for (String bad : rule.getValue()) {
                            if (l.startsWith("import " + bad + ".") || l.startsWith("import static " + bad + ".")) {
                                violations.add(f + ": " + l);
                            }
                        }
                    }
                }
            }
        }
        assertTrue(violations.isEmpty(), String.join("\n", violations));
    }
}
