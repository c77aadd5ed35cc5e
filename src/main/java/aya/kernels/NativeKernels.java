package aya.kernels;

import java.lang.foreign.MemorySegment;

/** Native backend (C over FFM). PLACEHOLDER: owned by the native work (issue 3), replaced there. */
public final class NativeKernels implements Kernels {
    /** Loads the native library for this OS/arch, or throws aya.AyaException naming why it cannot. */
    public static NativeKernels load() { throw new aya.AyaException("native backend not built yet"); }
    public String name() { return "native"; }
    public void matmul(WeightType type, MemorySegment w, MemorySegment x, MemorySegment out, int tokens, int inDim, int outStride, int rowStart, int rowEnd) { throw new UnsupportedOperationException(); }
    public void embed(WeightType type, MemorySegment table, long row, int dim, MemorySegment out) { throw new UnsupportedOperationException(); }
    public void layerNorm(MemorySegment x, MemorySegment weight, MemorySegment out, int tokens, int dim, float eps) { throw new UnsupportedOperationException(); }
    public void ropeInterleaved(MemorySegment vec, int tokens, int heads, int headDim, int pos0, MemorySegment cos, MemorySegment sin) { throw new UnsupportedOperationException(); }
    public void attention(MemorySegment q, MemorySegment kCache, MemorySegment vCache, MemorySegment out, int tokens, int pos0, int heads, int kvHeads, int headDim, int capacity, int window, float scale, MemorySegment scratch, int itemStart, int itemEnd) { throw new UnsupportedOperationException(); }
    public void swiglu(MemorySegment gate, MemorySegment up, long start, long end) { throw new UnsupportedOperationException(); }
    public void softmax(MemorySegment x, int n) { throw new UnsupportedOperationException(); }
}
