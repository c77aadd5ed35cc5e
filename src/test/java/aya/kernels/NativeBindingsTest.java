package aya.kernels;

import aya.kernels.ffm.aya_kernels_h;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/** The committed jextract bindings must match native/include/aya_kernels.h: regenerate with bindings/generate.sh. */
class NativeBindingsTest {

    private static final Path HEADER = Path.of("native/include/aya_kernels.h");

    @Test
    void headerHashMatchesTheOneTheBindingsWereGeneratedFrom() throws Exception {
        String recorded = Files.readString(Path.of("bindings/header.sha256")).trim().split("\\s+")[0];
        String actual = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(HEADER)));
        assertEquals(recorded, actual, HEADER + " changed since the bindings were generated: run bindings/generate.sh");
    }

    @Test
    void everyHeaderFunctionHasABindingWithTheSameParameterCount() throws IOException {
        Map<String, Integer> declared = declaredFunctions();
        assertTrue(declared.size() >= 16, "parsed too few functions from the header: " + declared.keySet());
        for (var e : declared.entrySet()) {
            Method m = Arrays.stream(aya_kernels_h.class.getMethods())
                    .filter(x -> x.getName().equals(e.getKey()) && Modifier.isStatic(x.getModifiers()))
                    .findFirst().orElse(null);
            assertNotNull(m, "no binding for " + e.getKey() + ": run bindings/generate.sh");
            assertEquals(e.getValue(), m.getParameterCount(), "parameter count of " + e.getKey());
        }
    }

    @Test
    void loaderRequiresExactlyTheHeaderFunctions() throws IOException {
        assertEquals(declaredFunctions().keySet(), new TreeSet<>(NativeLibrary.REQUIRED_SYMBOLS));
    }

    @Test
    void weightTypeOrderMatchesTheCEnum() {
        assertEquals(WeightType.F32.ordinal(), aya_kernels_h.AYA_WEIGHT_F32());
        assertEquals(WeightType.F16.ordinal(), aya_kernels_h.AYA_WEIGHT_F16());
        assertEquals(WeightType.BF16.ordinal(), aya_kernels_h.AYA_WEIGHT_BF16());
        assertEquals(WeightType.Q8_0.ordinal(), aya_kernels_h.AYA_WEIGHT_Q8_0());
        assertEquals(WeightType.Q4_0.ordinal(), aya_kernels_h.AYA_WEIGHT_Q4_0());
    }

    /** Function name -> parameter count, from the declarations in the header (comments stripped). */
    static Map<String, Integer> declaredFunctions() throws IOException {
        String text = Files.readString(HEADER).replaceAll("(?s)/\\*.*?\\*/", " ").replaceAll("//[^\n]*", " ");
        Matcher m = Pattern.compile("\\b(aya_[a-z0-9_]+)\\s*\\(([^)]*)\\)\\s*;").matcher(text);
        Map<String, Integer> out = new TreeMap<>();
        while (m.find()) {
            String params = m.group(2).trim();
            out.put(m.group(1), params.isEmpty() || params.equals("void") ? 0 : params.split(",").length);
        }
        return out;
    }
}
