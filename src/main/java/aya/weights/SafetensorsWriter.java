package aya.weights;

import aya.AyaException;
import aya.JsonText;
import aya.TempFiles;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Writes one .safetensors file: an 8-byte little-endian header length, a JSON header padded with spaces to a
 * multiple of 8 bytes, then the tensors' bytes back to back with no gaps.
 *
 * <p>Layout follows the reference implementation: tensors are ordered by element size (largest first, so every
 * tensor stays aligned to its element size) and then by name; the header lists {@code __metadata__} first and the
 * tensors in data order. The file is written to a temporary sibling and moved into place at the end, so a crash
 * never leaves a half-written file under the final name.
 *
 * <p>Tensor bytes come from a {@link TensorData} callback, chunk by chunk, so multi-GB tensors never sit in memory.
 */
public final class SafetensorsWriter {

    /** Fills {@code chunk} (position 0, little-endian) with the tensor's bytes starting at {@code byteOffset}. */
    @FunctionalInterface
    public interface TensorData {
        void fill(long byteOffset, ByteBuffer chunk);
    }

    /** One tensor: its dtype tag (e.g. BF16), shape, total byte size and where its bytes come from. */
    public record Tensor(String name, String dtype, long[] shape, long byteSize, TensorData data) {
        public Tensor {
            if (name.isEmpty() || name.equals("__metadata__")) {
                throw new IllegalArgumentException("bad tensor name: '" + name + "'");
            }
            for (long d : shape) {
                if (d < 0) throw new IllegalArgumentException(name + ": negative dimension in " + Arrays.toString(shape));
            }
            shape = shape.clone();
        }

        /** A tensor of a standard dtype, whose byte size follows from the shape. */
        public static Tensor of(String name, String dtype, long[] shape, TensorData data) {
            return new Tensor(name, dtype, shape, elementCount(shape) * elementBytes(dtype), data);
        }
    }

    /** Bytes of one element of a standard safetensors dtype. */
    public static int elementBytes(String dtype) {
        return switch (dtype) {
            case "F64", "I64", "U64" -> 8;
            case "F32", "I32", "U32" -> 4;
            case "F16", "BF16", "I16", "U16" -> 2;
            case "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2" -> 1;
            default -> throw new IllegalArgumentException("unknown safetensors dtype: " + dtype);
        };
    }

    public static long elementCount(long[] shape) {
        long n = 1;
        for (long d : shape) n = Math.multiplyExact(n, d);
        return n;
    }

    private final int chunkBytes;
    private final Map<String, String> metadata = new TreeMap<>();
    private final List<Tensor> tensors = new ArrayList<>();

    public SafetensorsWriter() {
        this(16 << 20);
    }

    /** chunkBytes: size of the buffer handed to {@link TensorData#fill} (tests use tiny ones). */
    SafetensorsWriter(int chunkBytes) {
        this.chunkBytes = chunkBytes;
        metadata.put("format", "pt"); // what torch/transformers write; some loaders check it
    }

    public SafetensorsWriter metadata(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    public SafetensorsWriter add(Tensor tensor) {
        for (Tensor t : tensors) {
            if (t.name().equals(tensor.name())) throw new IllegalArgumentException("duplicate tensor name: " + t.name());
        }
        tensors.add(tensor);
        return this;
    }

    /**
     * Dtypes in the reference implementation's sort order (its dtype enum, descending): wide types come first, so
     * every tensor starts aligned to its element size. Custom tags (e.g. quantized blocks) go last.
     */
    private static final List<String> DTYPE_ORDER = List.of(
            "U64", "I64", "F64", "C64", "F32", "U32", "I32", "BF16", "F16", "U16", "I16",
            "F8_E8M0", "F8_E4M3", "F8_E5M2", "I8", "U8", "F6_E3M2", "F6_E2M3", "F4", "BOOL");

    private static int dtypeRank(String dtype) {
        int i = DTYPE_ORDER.indexOf(dtype);
        return i < 0 ? DTYPE_ORDER.size() : i;
    }

    /** Tensors in the order their bytes are laid out: by dtype (wide first), then by name. */
    List<Tensor> dataOrder() {
        List<Tensor> order = new ArrayList<>(tensors);
        order.sort(Comparator.comparingInt((Tensor t) -> dtypeRank(t.dtype())).thenComparing(Tensor::name));
        return order;
    }

    /** The padded header (JSON + spaces) that precedes the data, without the 8-byte length. */
    byte[] header() {
        StringBuilder json = new StringBuilder("{");
        json.append("\"__metadata__\":{");
        boolean first = true;
        for (var e : metadata.entrySet()) {
            if (!first) json.append(',');
            first = false;
            JsonText.appendString(json, e.getKey());
            json.append(':');
            JsonText.appendString(json, e.getValue());
        }
        json.append('}');
        long offset = 0;
        for (Tensor t : dataOrder()) {
            json.append(',');
            JsonText.appendString(json, t.name());
            json.append(":{\"dtype\":");
            JsonText.appendString(json, t.dtype());
            json.append(",\"shape\":[");
            for (int i = 0; i < t.shape().length; i++) {
                if (i > 0) json.append(',');
                json.append(t.shape()[i]);
            }
            json.append("],\"data_offsets\":[").append(offset).append(',').append(offset + t.byteSize()).append("]}");
            offset += t.byteSize();
        }
        json.append('}');
        byte[] raw = json.toString().getBytes(StandardCharsets.UTF_8);
        int padded = (raw.length + 7) / 8 * 8; // data then starts 8-byte aligned
        byte[] out = Arrays.copyOf(raw, padded);
        Arrays.fill(out, raw.length, padded, (byte) ' ');
        return out;
    }

    /** Total file size in bytes. */
    public long fileSize() {
        long data = 0;
        for (Tensor t : tensors) data += t.byteSize();
        return 8 + header().length + data;
    }

    /** Writes the file atomically (temp sibling, then rename). */
    public void write(Path file) {
        Path tmp = null;
        try {
            tmp = TempFiles.create(file);
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
                byte[] header = header();
                ByteBuffer prefix = ByteBuffer.allocate(8 + header.length).order(ByteOrder.LITTLE_ENDIAN);
                prefix.putLong(header.length).put(header).flip();
                writeFully(ch, prefix);
                ByteBuffer chunk = ByteBuffer.allocateDirect(chunkBytes).order(ByteOrder.LITTLE_ENDIAN);
                for (Tensor t : dataOrder()) {
                    for (long off = 0; off < t.byteSize(); off += chunkBytes) {
                        int len = (int) Math.min(chunkBytes, t.byteSize() - off);
                        chunk.clear().limit(len);
                        t.data().fill(off, chunk.slice(0, len).order(ByteOrder.LITTLE_ENDIAN));
                        chunk.position(0).limit(len);
                        writeFully(ch, chunk);
                    }
                }
            }
            TempFiles.commit(tmp, file);
        } catch (IOException e) {
            if (tmp != null) TempFiles.delete(tmp);
            throw new AyaException("cannot write " + file + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            if (tmp != null) TempFiles.delete(tmp);
            throw e;
        }
    }

    private static void writeFully(FileChannel ch, ByteBuffer buf) throws IOException {
        while (buf.hasRemaining()) ch.write(buf);
    }

    /** Header map as a reader would see it (for tests and the index file): name → [start, end). */
    public Map<String, long[]> offsets() {
        Map<String, long[]> m = new LinkedHashMap<>();
        long offset = 0;
        for (Tensor t : dataOrder()) {
            m.put(t.name(), new long[]{offset, offset + t.byteSize()});
            offset += t.byteSize();
        }
        return m;
    }
}
