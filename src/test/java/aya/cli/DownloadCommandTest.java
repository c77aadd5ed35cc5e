package aya.cli;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.*;

class DownloadCommandTest {

    private static String stderrOf(String... args) {
        PrintStream saved = System.err;
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        try {
            assertEquals(Main.EXIT_USER_ERROR, Main.run(args));
        } finally {
            System.setErr(saved);
        }
        return err.toString(StandardCharsets.UTF_8);
    }

    @Test
    void badArgumentsAreUserErrorsWithOneLine() {
        String bad = stderrOf("download", "not a repo");
        assertTrue(bad.startsWith("aya: 'not a repo' is not a Hugging Face repo id"), bad);
        assertEquals(1, bad.strip().lines().count(), bad);

        String revision = stderrOf("download", "Org/Name", "--revision", "../../x");
        assertTrue(revision.contains("not a usable revision"), revision);

        String ggufRevision = stderrOf("download", "Org/Name-GGUF:Q4_0", "--revision", "v1");
        assertTrue(ggufRevision.startsWith("aya: --revision is not supported with REPO:QUANT"), ggufRevision);
        String quant = stderrOf("download", "Org/Name-GGUF:Q4 0");
        assertTrue(quant.contains("the quantization after ':' must be a name like Q4_K_M"), quant);

        String missing = stderrOf("download");
        assertTrue(missing.startsWith("aya: Missing required parameter"), missing);
    }
}
