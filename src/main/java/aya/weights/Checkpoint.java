package aya.weights;

import aya.AyaException;
import aya.kernels.MappingGuard;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The tensors of a Hugging Face checkpoint directory: {@code model.safetensors}, else the shards named by
 * {@code model.safetensors.index.json} (the order transformers uses). Every file is memory-mapped into one shared arena; tensors are
 * views into the mappings, valid until {@link #close()}.
 */
public final class Checkpoint implements AutoCloseable {

    public static final String SINGLE_FILE = "model.safetensors";
    public static final String INDEX_FILE = "model.safetensors.index.json";

    private final Arena arena;
    private final Map<String, Tensor> tensors;
    private final String describe;
    private final List<FileStamp> files = new ArrayList<>(); // what each mapped file looked like when it was mapped
    private GgufFile gguf; // the file, when the checkpoint is a GGUF (its metadata holds config and tokenizer); else null

    private Checkpoint(Arena arena, Map<String, Tensor> tensors, String describe) {
        this.arena = arena;
        this.tensors = tensors;
        this.describe = describe;
    }

    /**
     * Size, modification time and identity (inode) of a mapped file, and its {@link MappingGuard} slot (-1: not
     * guarded), which turns a read of a page the file lost into zeros and a mark instead of a SIGBUS.
     */
    private record FileStamp(Path path, long size, FileTime modified, Object key, int guardSlot) {
        static FileStamp of(Path path, MemorySegment mapping) {
            try {
                BasicFileAttributes a = Files.readAttributes(path, BasicFileAttributes.class);
                return new FileStamp(path, a.size(), a.lastModifiedTime(), a.fileKey(), MappingGuard.watch(mapping));
            } catch (IOException e) {
                throw new AyaException(path + ": cannot read: " + e.getMessage());
            }
        }
    }

    /** Records a file mapped into this checkpoint's arena (stamp for the change checks, guard slot). */
    private void track(SafetensorsFile f) {
        files.add(FileStamp.of(f.path(), f.mapping()));
    }

    /**
     * Maps another safetensors file into this checkpoint (e.g. a quantized cache of its matrices): it lives as long
     * as the checkpoint and is watched for changes like the checkpoint's own files.
     */
    public SafetensorsFile mapFile(Path file) {
        SafetensorsFile f = SafetensorsFile.open(file, arena);
        track(f);
        return f;
    }

    /** Opens the checkpoint in {@code dir}. */
    public static Checkpoint open(Path dir) {
        Arena arena = Arena.ofShared();
        try {
            Path index = dir.resolve(INDEX_FILE);
            Path single = dir.resolve(SINGLE_FILE);
            // transformers looks for the single file first, then the index
            if (Files.isRegularFile(single)) {
                SafetensorsFile f = SafetensorsFile.open(single, arena);
                Checkpoint c = new Checkpoint(arena, f.tensors(), single.toString());
                c.track(f);
                return c;
            }
            if (Files.isRegularFile(index)) {
                return openSharded(dir, index, arena);
            }
            throw new AyaException(dir + ": no " + SINGLE_FILE + " or " + INDEX_FILE + " in the model directory");
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /**
     * Opens a GGUF file as a checkpoint: its tensors appear under the Hugging Face names the model asks for
     * ({@code blk.3.attn_q.weight} as {@code model.layers.3.self_attn.q_proj.weight}, ...), read in place.
     * Tensors of other names keep their GGUF names.
     */
    public static Checkpoint openGguf(Path file) {
        Arena arena = Arena.ofShared();
        try {
            GgufFile f = GgufFile.open(file, arena);
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (Tensor t : f.tensors().values()) {
                String hfName = hfName(t.name());
                Tensor renamed = new Tensor(hfName, t.dtype(), t.shape(), t.data(), t.file());
                if (tensors.put(hfName, renamed) != null) {
                    throw new AyaException(file + ": two tensors map to '" + hfName + "' (one is '" + t.name() + "')");
                }
            }
            Checkpoint c = new Checkpoint(arena, tensors, file.toString());
            c.gguf = f;
            c.files.add(FileStamp.of(file, f.mapping()));
            return c;
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /** GGUF tensor names (llama.cpp's cohere2 names) and the Hugging Face names they stand for. */
    private static final Map<String, String> GGUF_TO_HF = Map.of(
            "token_embd.weight", "model.embed_tokens.weight",
            "output_norm.weight", "model.norm.weight",
            "output.weight", "lm_head.weight");
    private static final Map<String, String> GGUF_TO_HF_LAYER = Map.of(
            "attn_norm.weight", "input_layernorm.weight",
            "attn_q.weight", "self_attn.q_proj.weight",
            "attn_k.weight", "self_attn.k_proj.weight",
            "attn_v.weight", "self_attn.v_proj.weight",
            "attn_output.weight", "self_attn.o_proj.weight",
            "ffn_gate.weight", "mlp.gate_proj.weight",
            "ffn_up.weight", "mlp.up_proj.weight",
            "ffn_down.weight", "mlp.down_proj.weight");
    private static final java.util.regex.Pattern GGUF_LAYER = java.util.regex.Pattern.compile("blk\\.(\\d{1,6})\\.(.+)");

    /** The Hugging Face name of a GGUF tensor name (the name itself when it is not one of cohere2's). */
    static String hfName(String ggufName) {
        String top = GGUF_TO_HF.get(ggufName);
        if (top != null) return top;
        java.util.regex.Matcher m = GGUF_LAYER.matcher(ggufName);
        if (m.matches()) {
            String inLayer = GGUF_TO_HF_LAYER.get(m.group(2));
            if (inLayer != null) return "model.layers." + Integer.parseInt(m.group(1)) + "." + inLayer;
        }
        return ggufName;
    }

    /** The GGUF file this checkpoint was opened from, or null for safetensors. */
    public GgufFile gguf() {
        return gguf;
    }

    private static Checkpoint openSharded(Path dir, Path index, Arena arena) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(Files.readString(index));
        } catch (IOException e) {
            throw new AyaException(index + ": not valid JSON: " + firstLine(e.getMessage()));
        }
        JsonNode map = root == null ? null : root.get("weight_map");
        if (map == null || !map.isObject()) {
            throw new AyaException(index + ": no 'weight_map' object");
        }
        Map<String, SafetensorsFile> shards = new LinkedHashMap<>();
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = map.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            String name = e.getKey();
            String shardName = e.getValue().asText();
            if (!e.getValue().isTextual() || shardName.isEmpty() || shardName.contains("/") || shardName.contains("\\")) {
                throw new AyaException(index + ": tensor '" + name + "' maps to a bad shard name " + e.getValue());
            }
            SafetensorsFile shard = shards.get(shardName);
            if (shard == null) {
                Path p = dir.resolve(shardName);
                if (!Files.isRegularFile(p)) {
                    throw new AyaException(index + ": names shard " + shardName + ", which is missing");
                }
                shard = SafetensorsFile.open(p, arena);
                shards.put(shardName, shard);
            }
            Tensor t = shard.tensors().get(name);
            if (t == null) {
                throw new AyaException(index + ": says tensor '" + name + "' is in " + shardName + ", but that file does not hold it");
            }
            tensors.put(name, t);
        }
        Checkpoint c = new Checkpoint(arena, tensors, index + " (" + shards.size() + " shards)");
        for (SafetensorsFile s : shards.values()) c.track(s);
        return c;
    }

    public boolean has(String name) {
        return tensors.containsKey(name);
    }

    /** The tensor {@code name}, or an error naming it as missing. */
    public Tensor tensor(String name) {
        Tensor t = tensors.get(name);
        if (t == null) {
            throw new AyaException(describe + ": missing tensor '" + name + "'");
        }
        return t;
    }

    public Map<String, Tensor> tensors() {
        return Collections.unmodifiableMap(tensors);
    }

    /** The arena holding the mappings (also used for small tensors converted at load). */
    public Arena arena() {
        return arena;
    }

    /** One line per mapped file: name, size in bytes and modification time (ms); changes when any file does. */
    public String sourceStamp() {
        StringBuilder sb = new StringBuilder();
        for (FileStamp f : files) {
            sb.append(f.path().getFileName()).append(' ').append(f.size()).append(' ').append(f.modified().toMillis()).append('\n');
        }
        return sb.toString();
    }

    public String describe() {
        return describe;
    }

    /**
     * Throws if a mapped file was truncated or rewritten in place since it was mapped. Reading a page of a mapping
     * past the file's new end raises SIGBUS, which kills the JVM (or crashes a native kernel) instead of giving an
     * error, so callers check here before each session. Costs one stat per file. A file replaced by rename (as
     * downloads do) is not a risk: the mapping keeps the old file alive.
     */
    public void verifyUnchanged() {
        for (FileStamp was : files) {
            BasicFileAttributes now;
            try {
                now = Files.readAttributes(was.path(), BasicFileAttributes.class);
            } catch (IOException e) {
                continue; // deleted or renamed away: the mapping still holds the old file
            }
            if (!java.util.Objects.equals(now.fileKey(), was.key())) {
                continue; // replaced by another file: ours is still mapped intact
            }
            if (now.size() != was.size() || !now.lastModifiedTime().equals(was.modified())) {
                throw new AyaException(was.path() + ": changed on disk after it was loaded (" + was.size() + " -> " + now.size()
                        + " bytes): reload the model");
            }
        }
    }

    /**
     * Throws if a mapped file changed while the model ran: a guarded mapping that read a page the file no longer has
     * (truncated: those reads gave zeros, so the step's result is garbage), or a size or mtime change. Called after
     * each forward step; costs one flag read and one stat per file.
     */
    public void checkIntact() {
        for (FileStamp f : files) {
            if (MappingGuard.faulted(f.guardSlot())) {
                throw new AyaException(f.path() + ": truncated on disk while the model was reading it (the lost pages read"
                        + " as zeros, the result is invalid): reload the model");
            }
        }
        verifyUnchanged();
    }

    @Override
    public void close() {
        for (FileStamp f : files) MappingGuard.unwatch(f.guardSlot());
        arena.close();
    }

    private static String firstLine(String s) {
        if (s == null) return "";
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }
}
