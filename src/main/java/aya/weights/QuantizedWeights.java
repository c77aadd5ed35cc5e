package aya.weights;

import aya.AyaException;
import aya.kernels.Quant;
import aya.kernels.WeightType;

import java.io.IOException;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * Weight matrices quantized at load (Q8_0 / Q4_0), kept in a cache file so the next load is an mmap.
 *
 * <p>The cache is {@code <modelDir>/aya-cache/model-<q>.safetensors}, or, when the model directory is not writable,
 * {@code $XDG_CACHE_HOME/aya/<hash of the model path>/} (default {@code ~/.cache/aya/...}). It is a plain safetensors
 * file: each matrix [rows, cols] is a U8 tensor [rows, rowBytes] of GGUF blocks, and {@code __metadata__} records the
 * format, the quantized type and the name, size and modification time of every source file. A cache whose record
 * differs (the checkpoint changed), that misses a tensor or has a wrong shape, or that cannot be read is rebuilt; it is
 * written to a temporary file and renamed, so a crash never leaves a half-written cache, under a file lock, so two
 * processes loading the same model quantize it once.
 *
 * <p>Matrices whose row length is not a multiple of 32 cannot be blocked and keep their original type.
 */
public final class QuantizedWeights {

    static final String FORMAT = "aya-quantized-weights-1";

    /**
     * The quantized tensors by name (dtype tag Q8_0/Q4_0, logical shape [rows, cols], data in the cache mapping),
     * the cache file (null when no location was writable and the weights live in memory) and whether this load
     * quantized (false when it mapped an existing cache).
     */
    public record Result(Map<String, Tensor> tensors, Path cacheFile, boolean built) {
    }

    private QuantizedWeights() {
    }

    /** Quantizes (or maps the cached) {@code names} of the checkpoint in {@code modelDir} to {@code type}. */
    public static Result load(Path modelDir, Checkpoint checkpoint, WeightType type, List<String> names, PrintStream log) {
        return load(modelDir, checkpoint, type, names, log, defaultUserCache());
    }

    static Result load(Path modelDir, Checkpoint checkpoint, WeightType type, List<String> names, PrintStream log,
                       Path userCacheRoot) {
        if (!type.quantized()) {
            throw new IllegalArgumentException(type + " is not a quantized type");
        }
        Map<String, Tensor> sources = new LinkedHashMap<>();
        for (String name : names) {
            Tensor t = checkpoint.tensor(name);
            if (t.shape().length == 2 && t.shape()[1] % type.blockSize == 0 && !t.weightType().quantized()) {
                sources.put(name, t);
            }
        }
        String fileName = "model-" + type.tag.toLowerCase(Locale.ROOT) + ".safetensors";
        Path local = modelDir.resolve("aya-cache").resolve(fileName);
        Path user = userCacheRoot == null ? null : userCacheRoot.resolve(pathHash(modelDir)).resolve(fileName);
        Map<String, String> expected = metadata(type, checkpoint.sourceStamp());

        for (Path candidate : user == null ? List.of(local) : List.of(local, user)) {
            if (!Files.isRegularFile(candidate)) continue;
            String problem = check(candidate, expected, sources, type);
            if (problem == null) {
                return new Result(map(candidate, checkpoint, type), candidate, false);
            }
            log.println("aya: quantized cache " + candidate + " " + problem + ": rebuilding it");
        }
        Path target = writableDir(local.getParent()) ? local : user != null && writableDir(user.getParent()) ? user : null;
        if (target == null) {
            log.println("aya: no writable cache location (" + local.getParent() + (user == null ? "" : ", " + user.getParent())
                    + "): quantizing to " + type.tag + " in memory; the next load will quantize again");
            Map<String, Tensor> out = new LinkedHashMap<>();
            for (Tensor src : sources.values()) {
                MemorySegment data = checkpoint.arena().allocate(src.shape()[0] * type.rowBytes(src.shape()[1]), 64);
                quantize(src, type, data);
                out.put(src.name(), quantizedView(src.name(), type, src.shape(), data, "memory"));
            }
            return new Result(out, null, true);
        }
        // One process quantizes at a time: the others wait on the lock, then find the finished cache.
        Path lockFile = target.resolveSibling("." + target.getFileName() + ".lock");
        try (FileChannel lockChannel = FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
             FileLock ignored = lockChannel.lock()) {
            if (Files.isRegularFile(target) && check(target, expected, sources, type) == null) {
                return new Result(map(target, checkpoint, type), target, false);
            }
            return build(target, checkpoint, type, sources, expected, log);
        } catch (IOException e) {
            throw new AyaException("cannot lock " + lockFile + ": " + e.getMessage());
        }
    }

    private static Result build(Path target, Checkpoint checkpoint, WeightType type, Map<String, Tensor> sources,
                                Map<String, String> expected, PrintStream log) {
        long start = System.nanoTime();
        log.println("aya: quantizing " + sources.size() + " matrices to " + type.tag + " into " + target);
        SafetensorsWriter writer = new SafetensorsWriter();
        expected.forEach(writer::metadata);
        for (Tensor src : sources.values()) {
            long rows = src.shape()[0];
            long rowBytes = type.rowBytes(src.shape()[1]);
            writer.add(new SafetensorsWriter.Tensor(src.name(), "U8", new long[]{rows, rowBytes}, rows * rowBytes,
                    new QuantizingData(src, type, rows * rowBytes)));
        }
        writer.write(target);
        log.printf(Locale.ROOT, "aya: quantized in %.1f s%n", (System.nanoTime() - start) / 1e9);
        String problem = check(target, expected, sources, type);
        if (problem != null) {
            throw new AyaException("quantized cache " + target + " " + problem + " right after writing it");
        }
        return new Result(map(target, checkpoint, type), target, true);
    }

    /** Quantizes src [rows, cols] into data, rows split over the common fork-join pool (all cores). */
    static void quantize(Tensor src, WeightType type, MemorySegment data) {
        int cols = (int) src.shape()[1];
        long rowBytes = type.rowBytes(cols);
        WeightType srcType = src.weightType();
        ThreadLocal<float[]> scratch = ThreadLocal.withInitial(() -> new float[cols]);
        IntStream.range(0, (int) src.shape()[0]).parallel().forEach(r ->
                Quant.quantizeMatrixRow(srcType, src.data(), r, cols, type, data, r * rowBytes, scratch.get()));
    }

    /** Tensor bytes for the writer: the whole matrix is quantized (in parallel) when its first chunk is asked for. */
    private static final class QuantizingData implements SafetensorsWriter.TensorData {
        private final Tensor src;
        private final WeightType type;
        private final long bytes;
        private Arena arena;
        private MemorySegment data;

        QuantizingData(Tensor src, WeightType type, long bytes) {
            this.src = src;
            this.type = type;
            this.bytes = bytes;
        }

        @Override
        public void fill(long byteOffset, ByteBuffer chunk) {
            if (data == null) {
                arena = Arena.ofShared();
                data = arena.allocate(bytes, 64);
                quantize(src, type, data);
            }
            int len = chunk.remaining();
            MemorySegment.ofBuffer(chunk).copyFrom(data.asSlice(byteOffset, len));
            if (byteOffset + len == bytes) { // last chunk: free the matrix
                arena.close();
                arena = null;
                data = null;
            }
        }
    }

    private static Map<String, String> metadata(WeightType type, String sourceStamp) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("aya.format", FORMAT);
        m.put("aya.quant", type.tag);
        m.put("aya.source", sourceStamp);
        return m;
    }

    /** Why the cache file cannot be used (e.g. "is stale"), or null when it matches the checkpoint. */
    private static String check(Path file, Map<String, String> expected, Map<String, Tensor> sources, WeightType type) {
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsFile f;
            try {
                f = SafetensorsFile.open(file, arena);
            } catch (AyaException e) {
                return "is unreadable (" + e.getMessage() + ")";
            }
            for (var e : expected.entrySet()) {
                if (!e.getValue().equals(f.metadata().get(e.getKey()))) {
                    return "is stale (its " + e.getKey() + " does not match the checkpoint)";
                }
            }
            for (Tensor src : sources.values()) {
                Tensor t = f.tensors().get(src.name());
                long[] shape = {src.shape()[0], type.rowBytes(src.shape()[1])};
                if (t == null || !t.dtype().equals("U8") || !java.util.Arrays.equals(t.shape(), shape)) {
                    return "does not hold " + src.name() + " as U8" + java.util.Arrays.toString(shape);
                }
            }
            if (f.tensors().size() != sources.size()) {
                return "holds other tensors than expected";
            }
            return null;
        }
    }

    /** Maps the (checked) cache into the checkpoint's arena: it lives as long as the model. */
    private static Map<String, Tensor> map(Path file, Checkpoint checkpoint, WeightType type) {
        SafetensorsFile f = checkpoint.mapFile(file);
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (Tensor t : f.tensors().values()) {
            long cols = t.shape()[1] / type.blockBytes * type.blockSize;
            out.put(t.name(), quantizedView(t.name(), type, new long[]{t.shape()[0], cols}, t.data(), file.toString()));
        }
        return out;
    }

    private static Tensor quantizedView(String name, WeightType type, long[] shape, MemorySegment data, String file) {
        return new Tensor(name, type.tag, shape.clone(), data, file);
    }

    private static boolean writableDir(Path dir) {
        try {
            Files.createDirectories(dir);
            return Files.isWritable(dir);
        } catch (IOException | SecurityException e) {
            return false;
        }
    }

    private static Path defaultUserCache() {
        String xdg = System.getenv("XDG_CACHE_HOME");
        if (xdg != null && !xdg.isBlank()) return Path.of(xdg, "aya");
        String home = System.getProperty("user.home");
        return home == null ? null : Path.of(home, ".cache", "aya");
    }

    /** 16 hex digits of the SHA-256 of the model directory's absolute path: one cache folder per model. */
    static String pathHash(Path modelDir) {
        try {
            byte[] h = MessageDigest.getInstance("SHA-256")
                    .digest(modelDir.toAbsolutePath().normalize().toString().getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(h, 0, 8);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
