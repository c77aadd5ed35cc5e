package aya.weights;

import aya.AyaException;
import aya.kernels.WeightType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;

import static aya.weights.GgufFixtures.*;
import static org.junit.jupiter.api.Assertions.*;

/** The GGUF reader on files written by llama.cpp's converter and quantizer, and on every kind of broken file. */
class GgufFileTest {

    @Test
    void readsTheConvertersFileWithTheSameBytesAsTheSafetensorsItCameFrom() {
        try (Arena arena = Arena.ofConfined()) {
            GgufFile gguf = GgufFile.open(TINY_BF16, arena);
            SafetensorsFile hf = SafetensorsFile.open(TINY_HF.resolve("model.safetensors"), arena);
            assertEquals(3, gguf.version());
            assertEquals("cohere2", gguf.metadata().get("general.architecture"));
            assertEquals(64L, gguf.metadata().get("cohere2.embedding_length"));
            assertEquals("tiny_aya", gguf.metadata().get("tokenizer.ggml.pre"));
            assertEquals(2048, ((List<?>) gguf.metadata().get("tokenizer.ggml.tokens")).size());
            assertEquals("<BOS_TOKEN>", ((List<?>) gguf.metadata().get("tokenizer.ggml.tokens")).get(2));
            assertEquals(1731, ((List<?>) gguf.metadata().get("tokenizer.ggml.merges")).size());
            assertEquals(Boolean.TRUE, gguf.metadata().get("tokenizer.ggml.add_bos_token"));
            assertEquals(2 + 4 * 8, gguf.tensors().size()); // token_embd, output_norm, a norm and 7 matrices per layer
            // every matrix holds exactly the bf16 bytes of the HF tensor it was converted from, with the shape reversed back
            for (Tensor t : gguf.tensors().values()) {
                Tensor h = hf.tensors().get(Checkpoint.hfName(t.name()));
                assertNotNull(h, t.name());
                assertArrayEquals(h.shape(), t.shape(), t.name());
                if (t.dtype().equals("BF16")) {
                    assertEquals(WeightType.BF16, t.weightType());
                    assertArrayEquals(h.data().toArray(ValueLayout.JAVA_BYTE), t.data().toArray(ValueLayout.JAVA_BYTE), t.name());
                } else {
                    assertEquals("F32", t.dtype(), t.name() + ": norms are stored in f32"); // widened exactly from bf16
                    assertEquals(1, t.shape().length);
                }
                assertEquals(0, (t.data().address() - gguf.mapping().address()) % 32, t.name() + " is aligned");
            }
        }
    }

    @Test
    void readsQuantizedTypesWithTheirBlockSizes() {
        try (Arena arena = Arena.ofConfined()) {
            GgufFile q4 = GgufFile.open(TINY_Q4_0, arena);
            assertEquals("Q4_0", q4.tensors().get("blk.0.attn_q.weight").dtype());
            assertEquals(64 * 64 / 32 * 18, q4.tensors().get("blk.0.attn_q.weight").data().byteSize());
            assertEquals("Q8_0", q4.tensors().get("token_embd.weight").dtype(), "llama-quantize keeps a tied head of 64-wide rows at 8 bits");
            GgufFile k = GgufFile.open(K256_Q4_K_M, arena);
            assertEquals("Q4_K", k.tensors().get("blk.0.attn_q.weight").dtype());
            assertEquals("Q6_K", k.tensors().get("token_embd.weight").dtype());
            assertEquals(256L * 256 / 256 * 144, k.tensors().get("blk.0.attn_q.weight").data().byteSize());
        }
    }

    /** A copy of the bf16 fixture with one change; its open must fail with one line naming the file and {@code expected}. */
    private static void assertRefused(Path tmp, Consumer<byte[]> patch, String expected) {
        byte[] file = bytes(TINY_BF16);
        patch.accept(file);
        assertRefusedFile(write(tmp.resolve("bad.gguf"), file), expected);
    }

    private static void assertRefusedFile(Path file, String expected) {
        try (Arena arena = Arena.ofConfined()) {
            AyaException e = assertThrows(AyaException.class, () -> GgufFile.open(file, arena));
            assertTrue(e.getMessage().startsWith(file.toString() + ": "), e.getMessage());
            assertTrue(e.getMessage().contains(expected), e.getMessage());
            assertEquals(-1, e.getMessage().indexOf('\n'), e.getMessage());
        }
    }

    @Test
    void refusesABadMagic(@TempDir Path tmp) {
        assertRefused(tmp, f -> f[3] = 'X', "bad magic 0x47475558");
    }

    @Test
    void refusesOtherVersionsNamingBigEndianFiles(@TempDir Path tmp) {
        assertRefused(tmp, f -> le(f).putInt(4, 1), "unsupported GGUF version 1");
        assertRefused(tmp, f -> le(f).putInt(4, 4), "unsupported GGUF version 4");
        assertRefused(tmp, f -> le(f).putInt(4, Integer.reverseBytes(3)), "(a big-endian file)");
    }

    @Test
    void refusesEveryTruncation(@TempDir Path tmp) {
        byte[] whole = bytes(TINY_BF16);
        int headerEnd = afterString(whole, "output_norm.weight"); // the last tensor info is near the end of the header
        for (int cut : new int[] {0, 23, 30, 100, 5000, headerEnd, whole.length - 1}) {
            Path file = write(tmp.resolve("cut" + cut + ".gguf"), Arrays.copyOf(whole, cut));
            assertRefusedFile(file, "truncated");
        }
    }

    @Test
    void refusesCountsAndLengthsTheFileCannotHold(@TempDir Path tmp) {
        assertRefused(tmp, f -> le(f).putLong(8, 1L << 40), "tensor count 1099511627776 cannot fit");
        assertRefused(tmp, f -> le(f).putLong(16, -1L), "metadata count 18446744073709551615 cannot fit");
        assertRefused(tmp, f -> le(f).putLong(afterString(f, "tokenizer.ggml.tokens") + 8, 1L << 50), "cannot fit");
        assertRefused(tmp, f -> le(f).putLong(afterString(f, "general.architecture") + 4, 1L << 33), "claims 8589934592 bytes");
    }

    @Test
    void refusesUnsupportedTensorTypes(@TempDir Path tmp) {
        // blk.0.attn_q.weight: u32 n_dims (2), two u64 dims, then the u32 type
        assertRefused(tmp, f -> le(f).putInt(tensorInfo(f, "blk.0.attn_q.weight") + 4 + 16, 3), "unsupported ggml type 3");
        assertRefused(tmp, f -> le(f).putInt(tensorInfo(f, "blk.0.attn_q.weight") + 4 + 16, 1000), "unsupported ggml type 1000");
    }

    @Test
    void refusesBadDimensionsOffsetsAndOverlaps(@TempDir Path tmp) {
        assertRefused(tmp, f -> le(f).putInt(tensorInfo(f, "blk.0.attn_q.weight"), 5), "has 5 dimensions");
        assertRefused(tmp, f -> le(f).putLong(tensorInfo(f, "blk.0.attn_q.weight") + 4, 1L << 30), "ends at byte");
        int offsetOf = 4 + 16 + 4;
        assertRefused(tmp, f -> le(f).putLong(tensorInfo(f, "blk.0.attn_q.weight") + offsetOf,
                le(f).getLong(tensorInfo(f, "blk.0.attn_q.weight") + offsetOf) + 2), "not a multiple of the alignment 32");
        assertRefused(tmp, f -> le(f).putLong(tensorInfo(f, "blk.0.attn_q.weight") + offsetOf,
                le(f).getLong(tensorInfo(f, "blk.0.attn_k.weight") + offsetOf)), "overlap in the data section");
        byte[] q4 = bytes(TINY_Q4_0);
        le(q4).putLong(tensorInfo(q4, "blk.0.attn_q.weight") + 4, 48);
        assertRefusedFile(write(tmp.resolve("q4.gguf"), q4), "has rows of 48 elements, Q4_0 needs a multiple of 32");
    }

    @Test
    void readsGeneralAlignmentAndRefusesABadOne(@TempDir Path tmp) {
        // the converter writes general.alignment only when it is not 32: rename a u32 key of the same length to it
        Consumer<byte[]> alignmentKey = f -> {
            int at = afterString(f, "general.file_type") - "general.file_type".length();
            System.arraycopy("general.alignment".getBytes(), 0, f, at, 17);
        };
        byte[] f = bytes(TINY_BF16);
        alignmentKey.accept(f);
        assertEquals(32, le(f).getInt(afterString(f, "general.alignment") + 4), "BF16's file type is 32: the same alignment");
        try (Arena arena = Arena.ofConfined()) {
            assertEquals(34, GgufFile.open(write(tmp.resolve("a32.gguf"), f), arena).tensors().size());
        }
        assertRefused(tmp, alignmentKey.andThen(g -> le(g).putInt(afterString(g, "general.alignment") + 4, 24)), "must be a power of two");
        assertRefused(tmp, alignmentKey.andThen(g -> le(g).putInt(afterString(g, "general.alignment") + 4, 4096)), "alignment 4096");
    }

    @Test
    void refusesNestedArraysUnknownValueTypesAndBadBools(@TempDir Path tmp) {
        assertRefused(tmp, f -> le(f).putInt(afterString(f, "tokenizer.ggml.tokens") + 4, 9), "array of arrays");
        assertRefused(tmp, f -> le(f).putInt(afterString(f, "general.architecture"), 13), "unknown value type 13");
        assertRefused(tmp, f -> f[afterString(f, "tokenizer.ggml.add_bos_token") + 4] = 7, "is a bool of value 7");
    }
}
