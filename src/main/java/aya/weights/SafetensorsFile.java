package aya.weights;

import aya.AyaException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One {@code .safetensors} file, memory-mapped whole and validated strictly.
 * Layout: u64 little-endian header length N, N bytes of JSON header, then the data section;
 * the header maps each tensor name to {dtype, shape, data_offsets [begin, end) relative to the data section}.
 */
public final class SafetensorsFile {

    /** Headers above this are refused: real ones are a few hundred KB, and we must not allocate what a broken file claims. */
    public static final long MAX_HEADER_BYTES = 100L << 20;

    private final Path path;
    private final MemorySegment mapping; // the whole file
    private final Map<String, Tensor> tensors;
    private final Map<String, String> metadata;

    private SafetensorsFile(Path path, MemorySegment mapping, Map<String, Tensor> tensors, Map<String, String> metadata) {
        this.path = path;
        this.mapping = mapping;
        this.tensors = tensors;
        this.metadata = metadata;
    }

    /** The mapping of the whole file. */
    public MemorySegment mapping() {
        return mapping;
    }

    /** The header's {@code __metadata__} string entries (empty when there are none). */
    public Map<String, String> metadata() {
        return metadata;
    }

    public Path path() {
        return path;
    }

    /** Tensors in header order. */
    public Map<String, Tensor> tensors() {
        return tensors;
    }

    /** Bytes per element of every safetensors dtype (we validate sizes of all, read only F32/F16/BF16). */
    static int dtypeBytes(String dtype) {
        return switch (dtype) {
            case "BOOL", "U8", "I8", "F8_E4M3", "F8_E5M2" -> 1;
            case "U16", "I16", "F16", "BF16" -> 2;
            case "U32", "I32", "F32" -> 4;
            case "U64", "I64", "F64" -> 8;
            default -> 0;
        };
    }

    /** Maps {@code path} into {@code arena} (the mapping lives as long as the arena) and validates its header. */
    public static SafetensorsFile open(Path path, Arena arena) {
        long fileSize;
        MemorySegment file;
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            fileSize = ch.size();
            if (fileSize < 8) {
                throw new AyaException(path + ": truncated: " + fileSize + " bytes, a safetensors file starts with an 8-byte header length");
            }
            file = ch.map(FileChannel.MapMode.READ_ONLY, 0, fileSize, arena);
        } catch (NoSuchFileException e) {
            throw new AyaException(path + ": missing");
        } catch (IOException e) {
            throw new AyaException(path + ": cannot read: " + e.getMessage());
        }
        long headerLen = file.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
        if (headerLen <= 0 || headerLen > MAX_HEADER_BYTES) {
            throw new AyaException(path + ": bad header length " + Long.toUnsignedString(headerLen)
                    + " (must be 1.." + MAX_HEADER_BYTES + "): not a safetensors file or corrupt");
        }
        if (headerLen > fileSize - 8) {
            throw new AyaException(path + ": truncated: header length " + headerLen + " but the file has only "
                    + fileSize + " bytes");
        }
        byte[] headerBytes = file.asSlice(8, headerLen).toArray(ValueLayout.JAVA_BYTE);
        String headerText;
        try {
            headerText = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(java.nio.ByteBuffer.wrap(headerBytes)).toString();
        } catch (CharacterCodingException e) {
            throw new AyaException(path + ": header is not valid UTF-8");
        }
        JsonNode header;
        try {
            // duplicate names would let one entry hide another's byte range from the overlap check
            header = new ObjectMapper().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION).readTree(headerText);
        } catch (JsonProcessingException e) {
            throw new AyaException(path + ": header is not valid JSON: " + e.getOriginalMessage());
        }
        if (header == null || !header.isObject()) {
            throw new AyaException(path + ": header is not a JSON object");
        }
        long dataStart = 8 + headerLen;
        long dataSize = fileSize - dataStart;
        MemorySegment data = file.asSlice(dataStart, dataSize);

        record Span(String name, long begin, long end) {}
        List<Span> spans = new ArrayList<>();
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        Map<String, String> metadata = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            String name = e.getKey();
            if (name.equals("__metadata__")) {
                if (e.getValue().isObject()) {
                    e.getValue().fields().forEachRemaining(m -> {
                        if (m.getValue().isTextual()) metadata.put(m.getKey(), m.getValue().asText());
                    });
                }
                continue;
            }
            JsonNode info = e.getValue();
            String where = path + ": tensor '" + name + "'";
            if (!info.isObject()) {
                throw new AyaException(where + ": header entry is not an object");
            }
            JsonNode dtypeNode = info.get("dtype");
            if (dtypeNode == null || !dtypeNode.isTextual()) {
                throw new AyaException(where + ": header entry has no 'dtype' string");
            }
            String dtype = dtypeNode.asText();
            int elemBytes = dtypeBytes(dtype);
            if (elemBytes == 0) {
                throw new AyaException(where + ": unknown dtype '" + dtype + "'");
            }
            JsonNode shapeNode = info.get("shape");
            if (shapeNode == null || !shapeNode.isArray()) {
                throw new AyaException(where + ": header entry has no 'shape' list");
            }
            long[] shape = new long[shapeNode.size()];
            long elements = 1;
            for (int i = 0; i < shape.length; i++) {
                JsonNode d = shapeNode.get(i);
                if (!d.isIntegralNumber() || !d.canConvertToLong() || d.asLong() < 0) {
                    throw new AyaException(where + ": shape " + shapeNode + " has a bad dimension");
                }
                shape[i] = d.asLong();
                elements = multiplyChecked(elements, shape[i], where);
            }
            JsonNode offs = info.get("data_offsets");
            if (offs == null || !offs.isArray() || offs.size() != 2
                    || !offs.get(0).canConvertToLong() || !offs.get(1).canConvertToLong()
                    || !offs.get(0).isIntegralNumber() || !offs.get(1).isIntegralNumber()) {
                throw new AyaException(where + ": header entry needs 'data_offsets' [begin, end]");
            }
            long begin = offs.get(0).asLong();
            long end = offs.get(1).asLong();
            if (begin < 0 || end < begin) {
                throw new AyaException(where + ": bad data_offsets [" + begin + ", " + end + "]");
            }
            if (end > dataSize) {
                throw new AyaException(where + ": data_offsets end " + end + " is past the data section ("
                        + dataSize + " bytes): file truncated or corrupt");
            }
            long expectBytes = multiplyChecked(elements, elemBytes, where);
            if (end - begin != expectBytes) {
                throw new AyaException(where + ": " + (end - begin) + " bytes in data_offsets but shape "
                        + shapeNode + " of " + dtype + " needs " + expectBytes);
            }
            spans.add(new Span(name, begin, end));
            tensors.put(name, new Tensor(name, dtype, shape, data.asSlice(begin, end - begin), path.toString()));
        }
        spans.sort(Comparator.comparingLong(Span::begin).thenComparingLong(Span::end));
        for (int i = 1; i < spans.size(); i++) {
            Span a = spans.get(i - 1), b = spans.get(i);
            if (b.begin < a.end) {
                throw new AyaException(path + ": tensors '" + a.name + "' and '" + b.name + "' overlap in the data section");
            }
        }
        return new SafetensorsFile(path, file, tensors, metadata);
    }

    private static long multiplyChecked(long a, long b, String where) {
        try {
            return Math.multiplyExact(a, b);
        } catch (ArithmeticException e) {
            throw new AyaException(where + ": shape is too large");
        }
    }

}
