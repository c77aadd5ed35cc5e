package aya.weights;

import aya.AyaException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class SafetensorsWriterTest {

    @TempDir
    Path dir;

    /** The tensors of src/test/python/make_safetensors_fixture.py, built by hand. */
    private static SafetensorsWriter referenceTensors() {
        SafetensorsWriter w = new SafetensorsWriter();
        w.add(SafetensorsWriter.Tensor.of("model.norm.weight", "F32", new long[]{3}, floats(1.0f, -1.5f, 0.25f)));
        w.add(SafetensorsWriter.Tensor.of("a.weight", "F32", new long[]{2, 3}, floats(0f, 0.5f, 1f, 1.5f, 2f, 2.5f)));
        // bf16 bits of 1, -2, 0.5, 3.140625
        w.add(SafetensorsWriter.Tensor.of("b.bf16", "BF16", new long[]{4}, shorts(0x3F80, 0xC000, 0x3F00, 0x4049)));
        w.add(SafetensorsWriter.Tensor.of("c.f16", "F16", new long[]{2, 2}, shorts(
                Float.floatToFloat16(0.1f), Float.floatToFloat16(-0.2f), Float.floatToFloat16(65504f),
                Float.floatToFloat16(1e-4f))));
        w.add(SafetensorsWriter.Tensor.of("d.i8", "I8", new long[]{3}, (off, buf) -> buf.put(new byte[]{-128, 0, 127})));
        w.add(SafetensorsWriter.Tensor.of("e.empty_", "F32", new long[]{0, 4}, (off, buf) -> fail("no bytes to fill")));
        return w;
    }

    @Test
    void writesTheSameBytesAsTheReferenceLibrary() throws IOException {
        byte[] expected;
        try (InputStream in = getClass().getResourceAsStream("/weights/reference.safetensors")) {
            assertNotNull(in, "fixture missing: run src/test/python/make_safetensors_fixture.py");
            expected = in.readAllBytes();
        }
        Path file = dir.resolve("out.safetensors");
        SafetensorsWriter w = referenceTensors();
        w.write(file);
        assertArrayEquals(expected, Files.readAllBytes(file));
        assertEquals(expected.length, w.fileSize());
    }

    @Test
    void headerIsPaddedJsonWithContiguousOffsets() throws IOException {
        Path file = dir.resolve("x.safetensors");
        SafetensorsWriter w = new SafetensorsWriter().metadata("note", "quote \" and\nnewline");
        w.add(SafetensorsWriter.Tensor.of("w", "BF16", new long[]{3, 5}, (off, buf) -> {
            while (buf.hasRemaining()) buf.put((byte) 7);
        }));
        w.add(SafetensorsWriter.Tensor.of("v", "F32", new long[]{1}, floats(2f)));
        w.write(file);

        byte[] bytes = Files.readAllBytes(file);
        long headerLen = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, headerLen % 8, "header padded to 8 bytes");
        String header = new String(bytes, 8, (int) headerLen, StandardCharsets.UTF_8);
        assertEquals(header.strip(), header.stripTrailing(), "padding is trailing spaces only");
        JsonNode json = new ObjectMapper().readTree(header);
        assertEquals("pt", json.get("__metadata__").get("format").asText());
        assertEquals("quote \" and\nnewline", json.get("__metadata__").get("note").asText());
        // F32 before BF16 (wider first), offsets back to back covering the data exactly
        List<String> names = new ArrayList<>();
        long expectedStart = 0;
        for (Iterator<String> it = json.fieldNames(); it.hasNext(); ) {
            String name = it.next();
            if (name.equals("__metadata__")) continue;
            names.add(name);
            JsonNode offsets = json.get(name).get("data_offsets");
            assertEquals(expectedStart, offsets.get(0).asLong(), name);
            expectedStart = offsets.get(1).asLong();
        }
        assertEquals(List.of("v", "w"), names);
        assertEquals(bytes.length - 8 - headerLen, expectedStart);
        assertEquals(2f, ByteBuffer.wrap(bytes, (int) (8 + headerLen), 4).order(ByteOrder.LITTLE_ENDIAN).getFloat());
        assertEquals("[3,5]", json.get("w").get("shape").toString());
        assertEquals(15 * 2 + 4, expectedStart);
    }

    @Test
    void largeTensorsAreFilledChunkByChunkAtTheRightOffsets() throws IOException {
        Path file = dir.resolve("big.safetensors");
        int n = 1000; // bytes, over 64-byte chunks with a partial last chunk
        SafetensorsWriter w = new SafetensorsWriter(64);
        List<Long> offsets = new ArrayList<>();
        w.add(SafetensorsWriter.Tensor.of("bytes", "U8", new long[]{n}, (off, buf) -> {
            offsets.add(off);
            assertEquals(0, buf.position());
            for (int i = 0; buf.hasRemaining(); i++) buf.put((byte) ((off + i) * 31));
        }));
        w.write(file);
        assertEquals(16, offsets.size());
        assertEquals(960L, offsets.getLast());
        byte[] bytes = Files.readAllBytes(file);
        int dataStart = bytes.length - n;
        for (int i = 0; i < n; i++) assertEquals((byte) (i * 31), bytes[dataStart + i], "byte " + i);
    }

    @Test
    void failedWriteLeavesNothingBehind() throws IOException {
        Path file = dir.resolve("fail.safetensors");
        SafetensorsWriter w = new SafetensorsWriter();
        w.add(SafetensorsWriter.Tensor.of("x", "F32", new long[]{4}, (off, buf) -> {
            throw new IllegalStateException("generator broke");
        }));
        assertThrows(IllegalStateException.class, () -> w.write(file));
        try (var files = Files.list(dir)) {
            assertEquals(0, files.count(), "no partial file left");
        }
        AyaException missingDir = assertThrows(AyaException.class,
                () -> referenceTensors().write(dir.resolve("no/such/dir/x.safetensors")));
        assertTrue(missingDir.getMessage().contains("no/such/dir"), missingDir.getMessage());
    }

    @Test
    void rejectsBadTensors() {
        SafetensorsWriter w = new SafetensorsWriter();
        w.add(SafetensorsWriter.Tensor.of("a", "F32", new long[]{1}, floats(1f)));
        assertThrows(IllegalArgumentException.class,
                () -> w.add(SafetensorsWriter.Tensor.of("a", "F32", new long[]{1}, floats(1f))));
        assertThrows(IllegalArgumentException.class,
                () -> SafetensorsWriter.Tensor.of("__metadata__", "F32", new long[]{1}, floats(1f)));
        assertThrows(IllegalArgumentException.class,
                () -> SafetensorsWriter.Tensor.of("b", "F32", new long[]{-1}, floats(1f)));
        assertThrows(IllegalArgumentException.class,
                () -> SafetensorsWriter.Tensor.of("c", "Q9", new long[]{1}, floats(1f)));
    }

    private static SafetensorsWriter.TensorData floats(float... values) {
        return (off, buf) -> {
            for (float v : values) buf.putFloat(v);
        };
    }

    private static SafetensorsWriter.TensorData shorts(int... values) {
        return (off, buf) -> {
            for (int v : values) buf.putShort((short) v);
        };
    }
}
