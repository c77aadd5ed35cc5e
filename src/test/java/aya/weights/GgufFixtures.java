package aya.weights;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The GGUF fixtures made by llama.cpp's converter and quantizer (src/test/python/make_gguf_fixtures.py), and a
 * byte patcher to make bad files from them: each patch changes one field of a real file in place.
 */
public final class GgufFixtures {

    public static final Path DIR = Path.of("src/test/resources/gguf");
    public static final Path TINY_HF = DIR.resolve("tiny-hf");
    public static final Path TINY_BF16 = DIR.resolve("tiny-bf16.gguf");
    public static final Path TINY_Q8_0 = DIR.resolve("tiny-q8_0.gguf");
    public static final Path TINY_Q4_0 = DIR.resolve("tiny-q4_0.gguf");
    public static final Path K256_Q4_K_M = DIR.resolve("k256-q4_k_m.gguf");

    private GgufFixtures() {}

    public static byte[] bytes(Path file) {
        try {
            return Files.readAllBytes(file);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static Path write(Path file, byte[] bytes) {
        try {
            Files.write(file, bytes);
            return file;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The index just past the first occurrence of {@code text} preceded by its u64 length (a GGUF string). */
    public static int afterString(byte[] file, String text) {
        byte[] t = text.getBytes(StandardCharsets.UTF_8);
        outer:
        for (int i = 8; i + t.length <= file.length; i++) {
            for (int j = 0; j < t.length; j++) if (file[i + j] != t[j]) continue outer;
            if (le(file).getLong(i - 8) == t.length) return i + t.length;
        }
        throw new IllegalArgumentException("no GGUF string '" + text + "' in the file");
    }

    /** Replaces the string value of metadata {@code key} by {@code value} of the same length. */
    public static void patchStringValue(byte[] file, String key, String value) {
        int at = afterString(file, key) + 4 + 8; // u32 type, u64 length
        byte[] v = value.getBytes(StandardCharsets.UTF_8);
        if (le(file).getLong(at - 8) != v.length) throw new IllegalArgumentException("'" + value + "' must keep the length");
        System.arraycopy(v, 0, file, at, v.length);
    }

    /** Index of a tensor info's u32 n_dims (right after its name). */
    public static int tensorInfo(byte[] file, String tensor) {
        return afterString(file, tensor);
    }

    public static ByteBuffer le(byte[] file) {
        return ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN);
    }
}
