package aya.kernels;

import aya.AyaException;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static aya.kernels.ffm.aya_kernels_h.*;

/**
 * The native backend: every Kernels method is one call into libaya_kernels (C, see native/include/aya_kernels.h)
 * through the jextract bindings in {@code aya.kernels.ffm}. Segments pass as raw pointers: mmapped weights,
 * activations and KV cache are read and written in place, with no copy and no allocation per call. Segments must be
 * native (heap segments are refused by the FFM linker).
 *
 * <p>Arguments are bounds-checked here (a few compares per call) because the C code trusts them: a wrong size must be
 * an exception, never a JVM crash.
 *
 * <p>The instruction set is process-wide: {@link #load()} picks the best the CPU supports (or {@code AYA_ISA});
 * {@link #load(String)} forces one, for tests and benchmarks.
 */
public final class NativeKernels implements Kernels {

    private NativeKernels() {
    }

    /** Loads the native library for this OS/arch and picks the ISA, or throws aya.AyaException naming why it cannot. */
    public static NativeKernels load() {
        NativeLibrary.load();
        int status = aya_init();
        if (status != AYA_OK()) {
            throw new AyaException("native kernels: " + lastError());
        }
        return new NativeKernels();
    }

    /**
     * Loads the library and forces one instruction set ("scalar", "avx2", "avx512", "avx512bf16", "neon" or "auto";
     * avx512bf16 = avx512 plus vdpbf16ps for {@link #matmulBf16Activations}) for the whole
     * process, or throws aya.AyaException when this CPU or build lacks it.
     */
    public static NativeKernels load(String isa) {
        NativeLibrary.load();
        int status;
        try (Arena arena = Arena.ofConfined()) {
            status = aya_set_isa(arena.allocateFrom(isa));
        }
        if (status != AYA_OK()) {
            throw new AyaException("native kernels: " + lastError());
        }
        return new NativeKernels();
    }

    /** True when the library loads and has code for {@code isa} that this CPU can run. */
    public static boolean isaAvailable(String isa) {
        try {
            NativeLibrary.load();
        } catch (AyaException e) {
            return false;
        }
        try (Arena arena = Arena.ofConfined()) {
            return aya_isa_available(arena.allocateFrom(isa)) != 0;
        }
    }

    /** The instruction set in use, e.g. "avx2". */
    public String isa() {
        return aya_isa_name().reinterpret(64).getString(0);
    }

    private static String lastError() {
        return aya_last_error().reinterpret(512).getString(0);
    }

    @Override
    public String name() {
        return "native (" + isa() + ")";
    }

    @Override
    public void matmul(WeightType type, MemorySegment w, MemorySegment x, MemorySegment out,
                       int tokens, int inDim, int outStride, int rowStart, int rowEnd) {
        checkMatmul(type, w, x, out, tokens, inDim, outStride, rowStart, rowEnd);
        switch (type) {
            case F32 -> aya_matmul_f32_f32(w, x, out, tokens, inDim, outStride, rowStart, rowEnd);
            case F16 -> aya_matmul_f16_f32(w, x, out, tokens, inDim, outStride, rowStart, rowEnd);
            case BF16 -> aya_matmul_bf16_f32(w, x, out, tokens, inDim, outStride, rowStart, rowEnd);
            case Q8_0 -> aya_matmul_q8_0_f32(w, x, out, tokens, inDim, outStride, rowStart, rowEnd);
            case Q4_0 -> aya_matmul_q4_0_f32(w, x, out, tokens, inDim, outStride, rowStart, rowEnd);
            case Q5_0 -> aya_matmul_q5_0_f32(w, x, out, tokens, inDim, outStride, rowStart, rowEnd);
            case Q4_K -> aya_matmul_q4_k_f32(w, x, out, tokens, inDim, outStride, rowStart, rowEnd);
            case Q6_K -> aya_matmul_q6_k_f32(w, x, out, tokens, inDim, outStride, rowStart, rowEnd);
        }
    }

    /** The sizes and segments of a matmul call, checked: the C code trusts them. */
    private static void checkMatmul(WeightType type, MemorySegment w, MemorySegment x, MemorySegment out,
                                    int tokens, int inDim, int outStride, int rowStart, int rowEnd) {
        if (tokens < 1 || inDim < 1 || rowStart < 0 || rowEnd < rowStart || outStride < rowEnd) {
            throw new IllegalArgumentException("matmul: bad sizes tokens=" + tokens + " inDim=" + inDim + " outStride="
                    + outStride + " rows=[" + rowStart + ", " + rowEnd + ")");
        }
        need(w, rowEnd * type.rowBytes(inDim), "matmul weights"); // rowBytes also refuses a quantized inDim % 32 != 0
        aligned(w, elementBytes(type), "matmul weights");
        need(x, 4L * tokens * inDim, "matmul input");
        need(out, 4L * ((long) (tokens - 1) * outStride + rowEnd), "matmul output");
    }

    @Override
    public void matmulBf16Activations(MemorySegment w, MemorySegment x, MemorySegment out,
                                      int tokens, int inDim, int outStride, int rowStart, int rowEnd) {
        checkMatmul(WeightType.BF16, w, x, out, tokens, inDim, outStride, rowStart, rowEnd);
        aya_matmul_bf16_bf16(w, x, out, tokens, inDim, outStride, rowStart, rowEnd);
    }

    @Override
    public void embed(WeightType type, MemorySegment table, long row, int dim, MemorySegment out) {
        if (row < 0 || dim < 1) {
            throw new IllegalArgumentException("embed: bad row " + row + " or dim " + dim);
        }
        need(table, (row + 1) * type.rowBytes(dim), "embedding table");
        aligned(table, elementBytes(type), "embedding table");
        need(out, 4L * dim, "embedding output");
        switch (type) {
            case F32 -> aya_embed_f32_f32(table, row, dim, out);
            case F16 -> aya_embed_f16_f32(table, row, dim, out);
            case BF16 -> aya_embed_bf16_f32(table, row, dim, out);
            case Q8_0, Q4_0, Q5_0, Q4_K, Q6_K -> { // one row per token: dequantized in Java, no native entry point needed
                Quant.dequantizeRowInto(type, table, row, dim, out);
            }
        }
    }

    @Override
    public void layerNorm(MemorySegment x, MemorySegment weight, MemorySegment out, int tokens, int dim, float eps) {
        if (tokens < 0 || dim < 1) {
            throw new IllegalArgumentException("layerNorm: bad tokens " + tokens + " or dim " + dim);
        }
        need(x, 4L * tokens * dim, "layerNorm input");
        need(weight, 4L * dim, "layerNorm weight");
        need(out, 4L * tokens * dim, "layerNorm output");
        aya_layernorm_f32(x, weight, out, tokens, dim, eps);
    }

    @Override
    public void ropeInterleaved(MemorySegment vec, int tokens, int heads, int headDim, int pos0,
                                MemorySegment cos, MemorySegment sin) {
        if (tokens < 0 || heads < 1 || headDim < 2 || headDim % 2 != 0 || pos0 < 0) {
            throw new IllegalArgumentException("ropeInterleaved: bad sizes tokens=" + tokens + " heads=" + heads
                    + " headDim=" + headDim + " pos0=" + pos0);
        }
        need(vec, 4L * tokens * heads * headDim, "rope vectors");
        long table = 4L * (pos0 + tokens) * (headDim / 2);
        need(cos, table, "rope cos table");
        need(sin, table, "rope sin table");
        aya_rope_interleaved_f32(vec, tokens, heads, headDim, pos0, cos, sin);
    }

    @Override
    public void attention(MemorySegment q, MemorySegment kCache, MemorySegment vCache, MemorySegment out,
                          int tokens, int pos0, int heads, int kvHeads, int headDim, int capacity, int window,
                          float scale, MemorySegment scratch, int itemStart, int itemEnd) {
        if (tokens < 1 || pos0 < 0 || kvHeads < 1 || heads < kvHeads || heads % kvHeads != 0 || headDim < 1
                || capacity < 1 || window < 0 || itemStart < 0 || itemEnd < itemStart || itemEnd > tokens * heads) {
            throw new IllegalArgumentException("attention: bad sizes tokens=" + tokens + " pos0=" + pos0 + " heads=" + heads
                    + " kvHeads=" + kvHeads + " headDim=" + headDim + " capacity=" + capacity + " window=" + window
                    + " items=[" + itemStart + ", " + itemEnd + ")");
        }
        // the most keys a query of this call sees must fit the ring buffer and the scratch
        long lastPos = pos0 + tokens - 1L;
        long visible = window > 0 ? Math.min(window, lastPos + 1) : lastPos + 1;
        if (visible > capacity) {
            throw new IllegalArgumentException("attention: position " + lastPos + " sees " + visible
                    + " keys but the KV cache holds " + capacity);
        }
        need(q, 4L * tokens * heads * headDim, "attention queries");
        need(out, 4L * tokens * heads * headDim, "attention output");
        need(kCache, 4L * capacity * kvHeads * headDim, "K cache");
        need(vCache, 4L * capacity * kvHeads * headDim, "V cache");
        need(scratch, 4L * visible, "attention scratch");
        aya_attention_f32(q, kCache, vCache, out, tokens, pos0, heads, kvHeads, headDim, capacity, window, scale,
                scratch, itemStart, itemEnd);
    }

    @Override
    public void swiglu(MemorySegment gate, MemorySegment up, long start, long end) {
        if (start < 0 || end < start) {
            throw new IllegalArgumentException("swiglu: bad range [" + start + ", " + end + ")");
        }
        need(gate, 4L * end, "swiglu gate");
        need(up, 4L * end, "swiglu up");
        aya_swiglu_f32(gate, up, start, end);
    }

    @Override
    public void softmax(MemorySegment x, int n) {
        if (n < 0) {
            throw new IllegalArgumentException("softmax: bad length " + n);
        }
        need(x, 4L * n, "softmax input");
        aya_softmax_f32(x, n);
    }

    private static void need(MemorySegment segment, long bytes, String what) {
        if (segment.byteSize() < bytes) {
            throw new IllegalArgumentException(what + ": segment has " + segment.byteSize() + " bytes, needs " + bytes);
        }
        // the C code reads float / uint16_t through typed pointers: a misaligned one is undefined behaviour
        boolean weights = what.contains("weights") || what.contains("embedding table");
        aligned(segment, weights ? 2 : Float.BYTES, what);
    }

    private static void aligned(MemorySegment segment, long align, String what) {
        if (segment.address() % align != 0) {
            throw new IllegalArgumentException(what + ": address " + segment.address() + " is not " + align + "-byte aligned");
        }
    }

    /** Bytes of one element of an unquantized weight type (its C element type's alignment). */
    private static long elementBytes(WeightType type) {
        return type.quantized() ? 1 : type.rowBytes(1);
    }
}
