package aya.kernels;

import aya.AyaException;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.*;

class BackendTest {

    @Test
    void javaIsAlwaysThereAndUnknownNamesAreRefused() {
        try (Kernels k = Backend.open("java")) {
            assertInstanceOf(JavaKernels.class, k);
            assertTrue(k.name().startsWith("java"), k.name());
        }
        AyaException e = assertThrows(AyaException.class, () -> Backend.open("gpu"));
        assertTrue(e.getMessage().contains("gpu") && e.getMessage().contains("java, native, auto"), e.getMessage());
    }

    @Test
    void autoUsesNativeOrFallsBackWithOneWarningLine() {
        PrintStream old = System.err;
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        Kernels k;
        try {
            k = Backend.open("auto");
        } finally {
            System.setErr(old);
        }
        try (k) {
            String warning = err.toString(StandardCharsets.UTF_8);
            if (k instanceof NativeKernels) {
                assertEquals("", warning, "no warning when native loads");
            } else {
                assertInstanceOf(JavaKernels.class, k);
                assertEquals(1, warning.lines().count(), warning);
                assertTrue(warning.contains("native") && warning.contains("java"), warning);
                // native must fail the same way when asked for explicitly: an AyaException naming why
                assertThrows(AyaException.class, () -> Backend.open("native"));
            }
        }
    }
}
