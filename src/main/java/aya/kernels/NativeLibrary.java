package aya.kernels;

import aya.AyaException;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;

/**
 * Finds, extracts and loads libaya_kernels, and when it cannot, says exactly why (unsupported OS/arch, library missing
 * from the jar, dlopen failure, stale library). The only class that touches the library file.
 *
 * <p>The jar carries the library under {@code native/<os>-<arch>/} (CMake puts it there, see CMakeLists.txt). It is
 * extracted to a content-addressed cache folder ({@code $XDG_CACHE_HOME/aya/native/<hash>/}, else
 * {@code ~/.cache/aya/native/<hash>/}, else a temp folder), so concurrent runs and upgrades never see a half-written
 * file. {@code -Daya.native.library=/path/to/libaya_kernels.so} loads a given file instead (development).
 */
final class NativeLibrary {

    /** Functions the Java side calls: a library without one of them is stale. */
    static final List<String> REQUIRED_SYMBOLS = List.of(
            "aya_init", "aya_set_isa", "aya_isa_name", "aya_last_error", "aya_isa_available",
            "aya_matmul_f32_f32", "aya_matmul_f16_f32", "aya_matmul_bf16_f32", "aya_matmul_bf16_bf16", "aya_matmul_q8_0_f32",
            "aya_matmul_q4_0_f32", "aya_matmul_q5_0_f32", "aya_matmul_q4_k_f32", "aya_matmul_q6_k_f32",
            "aya_embed_f32_f32", "aya_embed_f16_f32", "aya_embed_bf16_f32",
            "aya_layernorm_f32", "aya_rope_interleaved_f32", "aya_attention_f32", "aya_swiglu_f32", "aya_softmax_f32",
            "aya_guard_add", "aya_guard_remove", "aya_guard_faulted", "aya_read_probe");

    private static Path loaded;

    private NativeLibrary() {
    }

    /** {@code <os>-<arch>} as CMake names the jar folder, e.g. linux-x86_64; null when this engine has no build for it. */
    static String platform() {
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
        String osTag = os.startsWith("linux") ? "linux" : os.startsWith("mac") ? "darwin" : os.startsWith("windows") ? "windows" : null;
        String archTag = switch (arch) {
            case "amd64", "x86_64" -> "x86_64";
            case "aarch64", "arm64" -> "aarch64";
            default -> null;
        };
        return osTag == null || archTag == null ? null : osTag + "-" + archTag;
    }

    /** Loads the library once per JVM (idempotent); throws AyaException naming the cause. Returns its path. */
    static synchronized Path load() {
        if (loaded != null) {
            return loaded;
        }
        String override = System.getProperty("aya.native.library");
        Path path;
        if (override != null && !override.isBlank()) {
            path = Path.of(override).toAbsolutePath();
            if (!Files.isRegularFile(path)) {
                throw new AyaException("native library " + path + " (from -Daya.native.library) does not exist");
            }
        } else {
            path = extract();
        }
        // System.load reports dlopen's own error text (not an ELF file, wrong architecture, missing dependency...).
        // It also makes the symbols visible to SymbolLookup.loaderLookup(), which the jextract bindings use.
        try {
            System.load(path.toString());
        } catch (UnsatisfiedLinkError e) {
            String reason = String.valueOf(e.getMessage());
            while (reason.startsWith(path + ": ")) { // the JDK repeats the path
                reason = reason.substring(path.toString().length() + 2);
            }
            throw new AyaException("cannot load native library " + path + ": " + reason, e);
        }
        // A handle of our own (dlopen returns the same one) to check that every function is there.
        SymbolLookup lookup;
        try {
            lookup = SymbolLookup.libraryLookup(path, Arena.global());
        } catch (IllegalArgumentException | IllegalCallerException e) {
            throw new AyaException("cannot load native library " + path + ": " + e.getMessage(), e);
        }
        for (String symbol : REQUIRED_SYMBOLS) {
            if (lookup.find(symbol).isEmpty()) {
                throw new AyaException("native library " + path + " is stale: it lacks " + symbol + " (rebuild with ./aya test or mvn package)");
            }
        }
        loaded = path;
        return path;
    }

    private static Path extract() {
        String platform = platform();
        if (platform == null) {
            throw new AyaException("no native kernels for " + System.getProperty("os.name") + " on " + System.getProperty("os.arch")
                    + " (built for linux-x86_64 and linux-aarch64)");
        }
        String fileName = System.mapLibraryName("aya_kernels");
        String resource = "native/" + platform + "/" + fileName;
        byte[] bytes;
        try (InputStream in = NativeLibrary.class.getClassLoader().getResourceAsStream(resource)) {
            if (in == null) {
                throw new AyaException("native library " + resource + " is not in the jar: this build has no native kernels for "
                        + platform + " (build on that platform with CMake, see README)");
            }
            bytes = in.readAllBytes();
        } catch (IOException e) {
            throw new AyaException("cannot read " + resource + " from the jar: " + e.getMessage(), e);
        }
        String hash = sha256(bytes).substring(0, 16);
        for (Path base : cacheRoots()) {
            Path target = base.resolve(hash).resolve(fileName);
            try {
                if (Files.isRegularFile(target) && Files.size(target) == bytes.length) {
                    return target;
                }
                Files.createDirectories(target.getParent());
                Path tmp = Files.createTempFile(target.getParent(), fileName, ".tmp");
                Files.write(tmp, bytes);
                try {
                    Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
                } catch (FileAlreadyExistsException | AtomicMoveNotSupportedException e) {
                    Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
                }
                return target;
            } catch (IOException | SecurityException e) {
                // not writable: try the next place
            }
        }
        throw new AyaException("cannot extract the native library: no writable cache or temp folder (tried " + cacheRoots() + ")");
    }

    private static List<Path> cacheRoots() {
        String xdg = System.getenv("XDG_CACHE_HOME");
        Path cache = xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".cache");
        return List.of(cache.resolve("aya").resolve("native"),
                Path.of(System.getProperty("java.io.tmpdir"), "aya-native-" + System.getProperty("user.name")));
    }

    private static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
