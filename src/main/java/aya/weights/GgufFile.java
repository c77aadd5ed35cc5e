package aya.weights;

import aya.AyaException;
import aya.kernels.WeightType;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One GGUF file (llama.cpp's format, spec: ggml {@code docs/gguf.md}), memory-mapped whole and validated strictly.
 * Layout, little-endian: magic "GGUF", u32 version (2 or 3), u64 tensor count, u64 metadata count, the metadata
 * (key, u32 type, value), the tensor infos (name, u32 n_dims, u64 dims innermost first, u32 ggml type, u64 offset),
 * then the data section at the next multiple of {@code general.alignment} (32 when absent).
 *
 * <p>Metadata values are {@code Long} (every integer type), {@code Double} (f32, f64), {@code Boolean}, {@code String},
 * or a {@code List} of one of those. Every count and length is checked against the bytes left in the file before
 * anything is allocated, so a corrupt or hostile header is an error, never a huge allocation.
 */
public final class GgufFile {

    public static final int MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
    public static final int DEFAULT_ALIGNMENT = 32;
    /** ggml tensors have at most 4 dimensions (GGML_MAX_DIMS). */
    static final int MAX_DIMS = 4;

    // metadata value types (gguf_type)
    private static final int UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
            STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12;

    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Path path;
    private final int version;
    private final MemorySegment mapping;
    private final Map<String, Object> metadata;
    private final Map<String, Tensor> tensors;

    private GgufFile(Path path, int version, MemorySegment mapping, Map<String, Object> metadata, Map<String, Tensor> tensors) {
        this.path = path;
        this.version = version;
        this.mapping = mapping;
        this.metadata = metadata;
        this.tensors = tensors;
    }

    public Path path() {
        return path;
    }

    public int version() {
        return version;
    }

    /** The mapping of the whole file. */
    public MemorySegment mapping() {
        return mapping;
    }

    /** Metadata in file order. */
    public Map<String, Object> metadata() {
        return metadata;
    }

    /**
     * Tensors in file order, under their GGUF names, with row-major shapes (GGUF lists dimensions innermost first:
     * a weight stored as {@code [in, out]} is the {@code [out, in]} matrix safetensors would hold).
     */
    public Map<String, Tensor> tensors() {
        return tensors;
    }

    /** True when {@code file} is a regular file that starts with the GGUF magic. */
    public static boolean isGguf(Path file) {
        if (!Files.isRegularFile(file)) return false;
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
            return ch.read(b, 0) == 4 && b.getInt(0) == MAGIC;
        } catch (IOException e) {
            return false;
        }
    }

    /**
     * True when {@code file} is a regular file meant as a GGUF: named {@code *.gguf} (any case; a bad one then gets the
     * reader's exact error) or starting with the magic. Other files are neither a model directory nor a GGUF.
     */
    public static boolean looksLikeGguf(Path file) {
        return Files.isRegularFile(file) && (file.getFileName().toString().toLowerCase(java.util.Locale.ROOT).endsWith(".gguf") || isGguf(file));
    }

    /** Maps {@code path} into {@code arena} (the mapping lives as long as the arena) and validates header and tensors. */
    public static GgufFile open(Path path, Arena arena) {
        MemorySegment file;
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 24) {
                throw new AyaException(path + ": truncated: " + size + " bytes, a GGUF header alone takes 24");
            }
            file = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
        } catch (NoSuchFileException e) {
            throw new AyaException(path + ": missing");
        } catch (IOException e) {
            throw new AyaException(path + ": cannot read: " + e.getMessage());
        }
        return new Reader(path, file).read();
    }

    /** The metadata of the GGUF file at {@code path} (the file is validated whole, then unmapped). */
    public static Map<String, Object> readMetadata(Path path) {
        try (Arena arena = Arena.ofConfined()) {
            return open(path, arena).metadata(); // plain Java values: they outlive the mapping
        }
    }

    /** A cursor over the header; every read checks that the bytes are there. */
    private static final class Reader {
        private final Path path;
        private final MemorySegment file;
        private long pos;

        Reader(Path path, MemorySegment file) {
            this.path = path;
            this.file = file;
        }

        GgufFile read() {
            int magic = file.get(U32, 0);
            if (magic != MAGIC) {
                throw new AyaException(path + ": bad magic " + hex(file.asSlice(0, 4)) + ", a GGUF file starts with 'GGUF'");
            }
            pos = 4;
            int version = u32("version");
            if (version != 2 && version != 3) {
                String hint = Integer.reverseBytes(version) == 2 || Integer.reverseBytes(version) == 3 ? " (a big-endian file)" : "";
                throw new AyaException(path + ": unsupported GGUF version " + Integer.toUnsignedString(version) + hint
                        + ", this reader handles versions 2 and 3");
            }
            long tensorCount = count("tensor count", 8 + 4 + 8 + 4 + 8); // smallest tensor info: empty name, 1 dim
            long metadataCount = count("metadata count", 8 + 4 + 1);        // smallest entry: empty key, a u8
            Map<String, Object> metadata = new LinkedHashMap<>();
            for (long i = 0; i < metadataCount; i++) {
                String key = string("metadata key #" + i);
                int type = u32("type of metadata '" + key + "'");
                Object value = value(type, "metadata '" + key + "'", true);
                if (metadata.put(key, value) != null) {
                    throw new AyaException(path + ": metadata key '" + key + "' appears twice");
                }
            }
            long alignment = DEFAULT_ALIGNMENT;
            Object a = metadata.get("general.alignment");
            if (a != null) {
                if (!(a instanceof Long l) || l <= 0 || l > (1 << 30) || Long.bitCount(l) != 1) {
                    throw new AyaException(path + ": general.alignment must be a power of two, got " + a);
                }
                alignment = l;
            }

            record Info(String name, long[] dims, WeightType type, long offset) {}
            List<Info> infos = new ArrayList<>();
            for (long i = 0; i < tensorCount; i++) {
                String name = string("tensor name #" + i);
                String where = "tensor '" + name + "'";
                int nDims = u32(where + " dimension count");
                if (nDims < 1 || nDims > MAX_DIMS) {
                    throw new AyaException(path + ": " + where + " has " + Integer.toUnsignedString(nDims) + " dimensions, expected 1.." + MAX_DIMS);
                }
                long[] dims = new long[nDims];
                for (int d = 0; d < nDims; d++) {
                    dims[d] = u64(where + " dimension");
                    if (dims[d] < 0 || dims[d] > (1L << 40)) {
                        throw new AyaException(path + ": " + where + " has a bad dimension " + Long.toUnsignedString(dims[d]));
                    }
                }
                int typeId = u32(where + " type");
                WeightType type = WeightType.fromGgml(typeId);
                if (type == null) {
                    throw new AyaException(path + ": " + where + " has unsupported ggml type " + Integer.toUnsignedString(typeId)
                            + " (supported: " + supportedTypes() + ")");
                }
                long offset = u64(where + " offset");
                infos.add(new Info(name, dims, type, offset));
            }
            long dataStart = alignUp(pos, alignment);
            if (dataStart > file.byteSize() && tensorCount > 0) {
                throw new AyaException(path + ": truncated: the data section would start at byte " + dataStart + " but the file has "
                        + file.byteSize());
            }
            long dataSize = Math.max(0, file.byteSize() - dataStart);

            record Span(String name, long begin, long end) {}
            List<Span> spans = new ArrayList<>();
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (Info info : infos) {
                String where = path + ": tensor '" + info.name + "'";
                long elements = 1;
                for (long d : info.dims) elements = multiply(elements, d, where);
                if (info.dims[0] % info.type.blockSize != 0) {
                    throw new AyaException(where + " has rows of " + info.dims[0] + " elements, " + info.type
                            + " needs a multiple of " + info.type.blockSize);
                }
                long bytes = multiply(elements / info.type.blockSize, info.type.blockBytes, where);
                if (info.offset < 0 || info.offset % alignment != 0) {
                    throw new AyaException(where + " has offset " + Long.toUnsignedString(info.offset) + ", not a multiple of the alignment "
                            + alignment);
                }
                if (info.offset > dataSize || bytes > dataSize - info.offset) {
                    throw new AyaException(where + " ends at byte " + (dataStart + info.offset + bytes) + " of the file, which has only "
                            + file.byteSize() + ": truncated or corrupt");
                }
                long[] shape = new long[info.dims.length];
                for (int d = 0; d < shape.length; d++) shape[d] = info.dims[shape.length - 1 - d];
                if (tensors.containsKey(info.name)) {
                    throw new AyaException(where + " appears twice");
                }
                tensors.put(info.name, new Tensor(info.name, info.type.tag, shape,
                        file.asSlice(dataStart + info.offset, bytes), path.toString()));
                spans.add(new Span(info.name, info.offset, info.offset + bytes));
            }
            spans.sort(Comparator.comparingLong(Span::begin).thenComparingLong(Span::end));
            for (int i = 1; i < spans.size(); i++) {
                Span x = spans.get(i - 1), y = spans.get(i);
                if (y.begin < x.end) {
                    throw new AyaException(path + ": tensors '" + x.name + "' and '" + y.name + "' overlap in the data section");
                }
            }
            return new GgufFile(path, version, file, Collections.unmodifiableMap(metadata), Collections.unmodifiableMap(tensors));
        }

        private Object value(int type, String what, boolean arrayAllowed) {
            return switch (type) {
                case UINT8 -> (long) (bytes(1, what).get(ValueLayout.JAVA_BYTE, 0) & 0xff);
                case INT8 -> (long) bytes(1, what).get(ValueLayout.JAVA_BYTE, 0);
                case UINT16 -> (long) (bytes(2, what).get(U16, 0) & 0xffff);
                case INT16 -> (long) bytes(2, what).get(U16, 0);
                case UINT32 -> Integer.toUnsignedLong(bytes(4, what).get(U32, 0));
                case INT32 -> (long) bytes(4, what).get(U32, 0);
                case FLOAT32 -> (double) Float.intBitsToFloat(bytes(4, what).get(U32, 0));
                case BOOL -> {
                    byte b = bytes(1, what).get(ValueLayout.JAVA_BYTE, 0);
                    if (b != 0 && b != 1) throw new AyaException(path + ": " + what + " is a bool of value " + b + ", expected 0 or 1");
                    yield b == 1;
                }
                case STRING -> string(what);
                case UINT64, INT64 -> bytes(8, what).get(U64, 0); // a u64 above 2^63 reads negative: the checks that use it refuse it
                case FLOAT64 -> Double.longBitsToDouble(bytes(8, what).get(U64, 0));
                case ARRAY -> {
                    if (!arrayAllowed) throw new AyaException(path + ": " + what + " is an array of arrays, which this reader does not support");
                    int elementType = u32(what + " element type");
                    long n = count(what + " length", minBytes(elementType, what));
                    List<Object> list = new ArrayList<>((int) Math.min(n, 1 << 20));
                    for (long i = 0; i < n; i++) list.add(value(elementType, what + "[" + i + "]", false));
                    yield Collections.unmodifiableList(list);
                }
                default -> throw new AyaException(path + ": " + what + " has unknown value type " + Integer.toUnsignedString(type));
            };
        }

        /** The fewest bytes one value of {@code type} takes: bounds an array's length by the bytes left. */
        private int minBytes(int type, String what) {
            return switch (type) {
                case UINT8, INT8, BOOL -> 1;
                case UINT16, INT16 -> 2;
                case UINT32, INT32, FLOAT32 -> 4;
                case UINT64, INT64, FLOAT64, STRING -> 8;
                case ARRAY -> throw new AyaException(path + ": " + what + " is an array of arrays, which this reader does not support");
                default -> throw new AyaException(path + ": " + what + " has unknown element type " + Integer.toUnsignedString(type));
            };
        }

        /** A u64 count of items of at least {@code minItemBytes} each, bounded by the bytes left in the file. */
        private long count(String what, int minItemBytes) {
            long n = u64(what);
            long left = file.byteSize() - pos;
            if (n < 0 || n > left / minItemBytes) {
                throw new AyaException(path + ": " + what + " " + Long.toUnsignedString(n) + " cannot fit in the " + left
                        + " bytes left: truncated or corrupt");
            }
            return n;
        }

        private String string(String what) {
            long n = u64(what + " length");
            long left = file.byteSize() - pos;
            if (n < 0 || n > left || n > Integer.MAX_VALUE - 8) {
                throw new AyaException(path + ": " + what + " claims " + Long.toUnsignedString(n) + " bytes but only " + left
                        + " are left: truncated or corrupt");
            }
            byte[] b = bytes(n, what).toArray(ValueLayout.JAVA_BYTE);
            try {
                return StandardCharsets.UTF_8.newDecoder()
                        .onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT)
                        .decode(java.nio.ByteBuffer.wrap(b)).toString();
            } catch (CharacterCodingException e) {
                throw new AyaException(path + ": " + what + " is not valid UTF-8");
            }
        }

        private int u32(String what) {
            return bytes(4, what).get(U32, 0);
        }

        private long u64(String what) {
            return bytes(8, what).get(U64, 0);
        }

        private MemorySegment bytes(long n, String what) {
            if (n > file.byteSize() - pos) {
                throw new AyaException(path + ": truncated: the file ends inside the " + what + " (at byte " + pos + " of "
                        + file.byteSize() + ")");
            }
            MemorySegment s = file.asSlice(pos, n);
            pos += n;
            return s;
        }
    }

    private static long alignUp(long x, long alignment) {
        return (x + alignment - 1) / alignment * alignment;
    }

    private static long multiply(long a, long b, String where) {
        try {
            return Math.multiplyExact(a, b);
        } catch (ArithmeticException e) {
            throw new AyaException(where + ": shape is too large");
        }
    }

    private static String supportedTypes() {
        return String.join(", ", Arrays.stream(WeightType.values()).map(t -> t.tag).toList());
    }

    private static String hex(MemorySegment s) {
        StringBuilder sb = new StringBuilder("0x");
        for (byte b : s.toArray(ValueLayout.JAVA_BYTE)) sb.append(String.format("%02x", b & 0xff));
        return sb.toString();
    }
}
