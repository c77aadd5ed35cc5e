package aya.kernels;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Q4_0 and Q4_K weights repacked at load for the Java backend's 16-bit products, one block of 32 weights per short
 * lane (docs/performance-java.md section 15). A row's blocks are taken G at a time (a "group", G = the short lanes of
 * the JVM's vector: 32 at 512 bits, 16 at 256), the last group padded with zero blocks. Per group, 8 vectors of G
 * shorts: short k of block j holds 4 nibbles q in 0..15, weights k (bits 0-3), k + 16 (4-7), k + 8 (8-11) and k + 24
 * (12-15), i.e. the little-endian pair of the block's file bytes k and k + 8 (Q4_0's byte l holds weight l low and
 * l + 16 high; Q4_K's sub-blocks are first brought to that order); then the group's factors. So a row is one array
 * stream, groups after groups, its factors next to their nibbles (section 35: a separate float[] of scales was a
 * second stream per row, 1.15-1.4x slower, also from cache). Weight = s q + o per block.
 * Q4_0: s = d, o = -8 d (o not stored: its products and its widening use (q - 8) d, the file's values bit for bit,
 * -0 included); the factors are the G f16 d as the file has them, one short each, so 18 bytes per block as in the
 * file; the decode widens them exactly ({@link #F16_BITS}; section 48).
 * Q4_K: s = d sc_j, o = -(dmin m_j), both exact in f32 (f16 times at most 6 + 4 bits), so s q + o is gguf-py's
 * value bit for bit ({@link KQuant#dequantizeRow}); the factors are the G f32 s, each as two shorts (low half first:
 * a short vector's int view, the Vector API's little-endian lane order), then the G f32 o + 8 s the same way (the
 * decode's second factor, its f32 sum as the decode took it per row before section 25), 24 bytes per block (the
 * file: 18; forming them from the file's fields in the decode cost more than the bytes saved, section 47).
 *
 * <p>The one-token product ({@link #matvec}) multiplies the nibbles with x quantized per block
 * ({@link NibbleActivations}) in 16-bit lanes that wrap: per lane, sum q xq over the block's 32 weights, minus 8 sum
 * xq, is exactly sum (q - 8) xq (|.| <= 32 * 8 * 127 = 32512), so each lane sums its own block with no horizontal
 * sum and no widening per block; per group it becomes f32 once: row += (s dx) * that + ((o + 8 s) * dx sum xq), the
 * second term only for Q4_K (Q4_0's o + 8 s is 0). One horizontal sum per row at the end.
 *
 * <p>On the Java heap (a short[]): Vector API loads from segments share one type profile with the mapped model file,
 * and C2 then compiled them as calls (docs/performance-java.md section 12).
 */
final class PackedNibbles extends JavaPackedMatrix {

    private static final VectorSpecies<Float> F = JavaKernels.F;
    private static final VectorSpecies<Integer> I = JavaKernels.I;
    /** A full vector of shorts: one block per lane. */
    static final VectorSpecies<Short> SV = VectorSpecies.of(short.class, F.vectorShape());
    /** As many shorts as F has floats (the narrowing of F ints). */
    static final VectorSpecies<Short> S_HALF = JavaKernels.S;
    /** Blocks per group. */
    static final int G = SV.length();
    /** As many bytes as SV has shorts: the decode's x, widened to SV as it is read. */
    static final VectorSpecies<Byte> XB = VectorSpecies.of(byte.class, VectorShape.forBitSize(SV.vectorBitSize() / 2));
    /** Where a group's scales start, in shorts from the group's start: after its 8 G nibble shorts. */
    private static final int SCALES_AT = 8 * G;
    /** Where a Q4_K group's f32 o + 8 s start: after the f32 scales' 2 G shorts. */
    private static final int OFFSETS_AT = SCALES_AT + 2 * G;
    /** Shorts per group: Q4_0's nibbles and G f16 scales, Q4_K's nibbles and 2 x G f32 factors. */
    private static final int Q4_0_GROUP = SCALES_AT + G, Q4_K_GROUP = OFFSETS_AT + 2 * G;
    /**
     * A finite f16 h sign-extended to an int: (h << 13) & F16_BITS is the f32 of h's sign whose exponent and mantissa
     * fields are h's (at f32's low exponent bits and high mantissa bits), i.e. h's value times 2^-112 exactly, normal
     * and subnormal h alike. The decode multiplies x's scale by {@link #F16_SCALE} = 2^112 instead (exact: dx is an f16
     * value), so s dx is the same f32 as with s widened by {@link Float#float16ToFloat}. Three integer operations per
     * F.length() scales; infinite and NaN scales, where it does not hold, are refused at pack time.
     */
    static final int F16_BITS = 0x8FFFE000;
    static final float F16_SCALE = 0x1p112f;
    private static final int BLOCK = Quant.BLOCK;
    private static final ValueLayout.OfFloat F32 = JavaKernels.F32;
    private static final ValueLayout.OfLong U64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(JavaKernels.LE);
    /**
     * The low nibble of both shorts of an int. The decode shifts the int view of its nibble shorts (then masks each
     * short's low nibble): C2 compiles an int shift by a constant to one {@code vpsrld} with an immediate count, a short
     * shift to a {@code vmovd} of the count and a {@code vpsrlw} by register (docs/performance-java.md sections 28, 45).
     */
    private static final int NIBBLES = 0x000F000F;
    /** The low nibble of every byte of a long. */
    private static final long LOW = 0x0F0F0F0F0F0F0F0FL;

    private final int groups;
    /** [rows][groups][8 G shorts of 4 nibbles, G f32 s as 2 G shorts, Q4_K: G f32 o + 8 s as 2 G shorts] (above). */
    private final short[] data;
    /** Shorts per group: 9 G (Q4_0) or 12 G (Q4_K). */
    private final int groupShorts;

    private PackedNibbles(WeightType sourceType, MemorySegment source, int rows, int cols) {
        super(sourceType, source, rows, cols);
        this.groups = (cols / BLOCK + G - 1) / G;
        this.groupShorts = sourceType == WeightType.Q4_K ? Q4_K_GROUP : Q4_0_GROUP;
        this.data = new short[arrayLength((long) rows * groups * groupShorts, "shorts")];
    }

    static boolean packs(WeightType type) {
        return type == WeightType.Q4_0 || type == WeightType.Q4_K;
    }

    /** w [rows, cols] of Q4_0 or Q4_K repacked (on the heap), the rows spread over the pool's threads. */
    static PackedNibbles pack(WeightType type, MemorySegment w, int rows, int cols, Parallel pool) {
        if (!packs(type)) throw new IllegalArgumentException(type + " is not packed by PackedNibbles");
        long fileRowBytes = JavaPackedMatrix.fileRowBytes(type, w, rows, cols);
        PackedNibbles p = new PackedNibbles(type, w, rows, cols);
        pool.forRange(rows, 1, (worker, from, to) -> {
            for (int r = from; r < to; r++) {
                long src = r * fileRowBytes;
                if (type == WeightType.Q4_0) {
                    for (int b = 0; b < cols / BLOCK; b++, src += type.blockBytes) {
                        short d = w.get(Quant.U16_LE, src);
                        requireFiniteScale(d, type, rows, cols, r, b);
                        p.putNibbles(r, b, w.get(U64_LE, src + 2), w.get(U64_LE, src + 10));
                        p.data[p.groupAt(r, b) + SCALES_AT + b % G] = d;
                    }
                } else {
                    for (int sb = 0; sb < cols / KQuant.QK_K; sb++, src += type.blockBytes) {
                        p.putQ4_K(r, sb * 8, w, src);
                    }
                }
            }
        });
        return p;
    }

    /** The Q4_K super-block at byte at of w as blocks b .. b + 7 of row r. */
    private void putQ4_K(int r, int b, MemorySegment w, long at) {
        float d = Float.float16ToFloat(w.get(Quant.U16_LE, at)), dmin = Float.float16ToFloat(w.get(Quant.U16_LE, at + 2));
        for (int g = 0; g < 4; g++) { // 32 bytes of nibbles: sub-block 2g low, 2g + 1 high
            long qs = at + 16 + 32L * g;
            long a0 = w.get(U64_LE, qs), a1 = w.get(U64_LE, qs + 8), a2 = w.get(U64_LE, qs + 16), a3 = w.get(U64_LE, qs + 24);
            // to Q4_0's order (byte l = weight l low, l + 16 high): bytes 0-7 and 8-15 as two longs
            putNibbles(r, b + 2 * g, a0 & LOW | (a2 & LOW) << 4, a1 & LOW | (a3 & LOW) << 4);
            putNibbles(r, b + 2 * g + 1, a0 >>> 4 & LOW | a2 & ~LOW, a1 >>> 4 & LOW | a3 & ~LOW);
            for (int j = 2 * g; j < 2 * g + 2; j++) {
                float s = d * KQuant.q4kScale(w, at, j), o = -(dmin * KQuant.q4kMin(w, at, j));
                int group = groupAt(r, b + j), lane = (b + j) % G;
                putFloat(group + SCALES_AT + 2 * lane, s);
                putFloat(group + OFFSETS_AT + 2 * lane, o + s * 8f);
            }
        }
    }

    /** Where the group of row r's block b starts in data. */
    private int groupAt(int r, int b) {
        return (r * groups + b / G) * groupShorts;
    }

    /** Block b of row r's 16 bytes in Q4_0's nibble order (bytes 0-7 and 8-15 as little-endian longs). */
    private void putNibbles(int r, int b, long bytes0, long bytes8) {
        int at = groupAt(r, b) + b % G;
        for (int k = 0; k < 8; k++) { // short k = bytes k and k + 8
            data[at + k * G] = (short) ((bytes0 >>> 8 * k & 0xFF) | (bytes8 >>> 8 * k & 0xFF) << 8);
        }
    }

    /** v's bits as data[at] (low half) and data[at + 1]: the int lane of a short vector's int view. */
    private void putFloat(int at, float v) {
        int bits = Float.floatToRawIntBits(v);
        data[at] = (short) bits;
        data[at + 1] = (short) (bits >>> 16);
    }

    private float getFloat(int at) {
        return Float.intBitsToFloat(data[at] & 0xFFFF | data[at + 1] << 16);
    }

    @Override
    public long byteSize() {
        return 2L * data.length;
    }

    /** The file's bytes of the matrix (what {@link NibbleGemm} unpacks). */
    MemorySegment source() {
        return source;
    }

    /** Whether the blocks have an offset o + 8 s (Q4_K; Q4_0's is 0). */
    boolean hasOffsets() {
        return sourceType == WeightType.Q4_K;
    }

    /**
     * dst[dstOff + i] = s of row r's block b + i, i &lt; n, or with {@code offsets} its o + 8 s (Q4_K): what
     * {@link NibbleGemm} reads. Q4_0's whole groups are widened as the decode widens them ({@link #f16Scales}).
     */
    void factors(int r, int b, int n, boolean offsets, float[] dst, int dstOff) {
        if (offsets && !hasOffsets()) throw new IllegalArgumentException(sourceType + " stores no offsets");
        boolean f16 = !hasOffsets();
        int plane = offsets ? OFFSETS_AT : SCALES_AT, width = f16 ? 1 : 2; // shorts per factor
        for (int i = 0; i < n; ) { // a group at a time: whole ones as two F vectors (a scalar loop here slowed the GEMM)
            int j = (b + i) % G, m = Math.min(G - j, n - i);
            int at = groupAt(r, b + i) + plane + width * j;
            if (m == G) {
                for (int part = 0; part < 2; part++) {
                    (f16 ? f16Scales(data, at + part * F.length()).mul(F16_SCALE) : ShortVector.fromArray(SV, data, at + part * G).reinterpretAsFloats())
                            .intoArray(dst, dstOff + i + part * F.length());
                }
            } else {
                for (int e = 0; e < m; e++) dst[dstOff + i + e] = f16 ? Float.float16ToFloat(data[at + e]) : getFloat(at + 2 * e);
            }
            i += m;
        }
    }

    /** The F.length() f16 at w[at] times 2^-112 as f32: Q4_0's scales as the decode takes them. */
    private static FloatVector f16Scales(short[] w, int at) {
        return f16Scaled(ShortVector.fromArray(S_HALF, w, at));
    }

    /** F.length() finite f16 (their bits) times 2^-112, as f32 ({@link #F16_BITS}; also {@link PackedQ8}'s scales). */
    static FloatVector f16Scaled(ShortVector h) {
        return ((IntVector) h.convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 13).and(F16_BITS).reinterpretAsFloats();
    }

    /**
     * Refuses a block scale d (f16 bits) that {@link #f16Scaled} does not widen exactly: infinite or NaN (the exponent
     * all ones), naming the matrix, row and block. Q4_0's and {@link PackedQ8}'s packing call it for every block.
     */
    static void requireFiniteScale(short d, WeightType type, int rows, int cols, int row, int block) {
        if ((d & 0x7C00) == 0x7C00) {
            throw new IllegalArgumentException(type + " matrix [" + rows + ", " + cols + "]: block " + block + " of row " + row
                    + " has a scale of " + Float.float16ToFloat(d) + " (not finite)");
        }
    }

    // ---------------------------------------------------------------------------------------------- prefill panels

    // ---------------------------------------------------------------------------------------------- decode

    /**
     * Decode of one token: out[r] = w[r] . x for r in [rowStart, rowEnd). x is quantized once per call (per thread).
     * Four rows per pass, one from each quarter of the slice ({@link #fourRowPasses}); the rows left over take a pass
     * with all four "rows" the same, so there is one call site and C2 compiles one copy of the kernel.
     */
    @Override
    public void matvec(MemorySegment x, MemorySegment out, int rowStart, int rowEnd) {
        NibbleActivations a = NibbleActivations.of(x, cols);
        float[] lanes = new float[4 * F.length()];
        fourRowPasses(rowStart, rowEnd, (r0, r1, r2, r3) -> dot4Rows(a, out, r0, r1, r2, r3, lanes));
    }

    /**
     * Rows r0 .. r3 . x into out (arithmetic in the class comment). Written out without
     * helper methods: C2 must inline every Vector API call of the four rows, or it boxes the vectors
     * (docs/performance-java.md sections 5-6). x is read as bytes (xq's values) and widened to shorts here: a pass over
     * rows 11008 wide reads all of x again, and as shorts (22 KB) it did not stay in L1 beside the four rows' streams
     * (their weights from memory 1.5x slower per byte than on 2048-wide rows); as bytes it does (section 41). Nibbles
     * 1-3 of a short come from its int view shifted ({@link #NIBBLES}). {@link #f16Scaled} is written out too: as a
     * call C2 did not inline it here (NodeCountInliningCutoff) and the kernel ran 1.5-4x slower (section 48).
     */
    private void dot4Rows(NibbleActivations a, MemorySegment out, int r0, int r1, int r2, int r3, float[] lanes) {
        short[] w = data;
        byte[] xq = a.xqBytes;
        boolean q4k = hasOffsets();
        FloatVector f0 = FloatVector.zero(F), f1 = f0, f2 = f0, f3 = f0;
        int rowShorts = groups * groupShorts;
        for (int g = 0; g < groups; g++) {
            ShortVector i0 = ShortVector.zero(SV), i1 = i0, i2 = i0, i3 = i0;
            int w0 = r0 * rowShorts + g * groupShorts, w1 = r1 * rowShorts + g * groupShorts, w2 = r2 * rowShorts + g * groupShorts, w3 = r3 * rowShorts + g * groupShorts;
            int xo = g * 32 * G;
            for (int k = 0; k < 8; k++, xo += 4 * G) {
                ShortVector n0 = ShortVector.fromArray(SV, w, w0 + k * G), n1 = ShortVector.fromArray(SV, w, w1 + k * G);
                ShortVector n2 = ShortVector.fromArray(SV, w, w2 + k * G), n3 = ShortVector.fromArray(SV, w, w3 + k * G);
                ShortVector v = (ShortVector) ByteVector.fromArray(XB, xq, xo).convertShape(VectorOperators.B2S, SV, 0);
                i0 = i0.add(n0.and((short) 15).mul(v));
                i1 = i1.add(n1.and((short) 15).mul(v));
                i2 = i2.add(n2.and((short) 15).mul(v));
                i3 = i3.add(n3.and((short) 15).mul(v));
                v = (ShortVector) ByteVector.fromArray(XB, xq, xo + G).convertShape(VectorOperators.B2S, SV, 0);
                i0 = i0.add(n0.reinterpretAsInts().lanewise(VectorOperators.LSHR, 4).and(NIBBLES).reinterpretAsShorts().mul(v));
                i1 = i1.add(n1.reinterpretAsInts().lanewise(VectorOperators.LSHR, 4).and(NIBBLES).reinterpretAsShorts().mul(v));
                i2 = i2.add(n2.reinterpretAsInts().lanewise(VectorOperators.LSHR, 4).and(NIBBLES).reinterpretAsShorts().mul(v));
                i3 = i3.add(n3.reinterpretAsInts().lanewise(VectorOperators.LSHR, 4).and(NIBBLES).reinterpretAsShorts().mul(v));
                v = (ShortVector) ByteVector.fromArray(XB, xq, xo + 2 * G).convertShape(VectorOperators.B2S, SV, 0);
                i0 = i0.add(n0.reinterpretAsInts().lanewise(VectorOperators.LSHR, 8).and(NIBBLES).reinterpretAsShorts().mul(v));
                i1 = i1.add(n1.reinterpretAsInts().lanewise(VectorOperators.LSHR, 8).and(NIBBLES).reinterpretAsShorts().mul(v));
                i2 = i2.add(n2.reinterpretAsInts().lanewise(VectorOperators.LSHR, 8).and(NIBBLES).reinterpretAsShorts().mul(v));
                i3 = i3.add(n3.reinterpretAsInts().lanewise(VectorOperators.LSHR, 8).and(NIBBLES).reinterpretAsShorts().mul(v));
                v = (ShortVector) ByteVector.fromArray(XB, xq, xo + 3 * G).convertShape(VectorOperators.B2S, SV, 0);
                i0 = i0.add(n0.reinterpretAsInts().lanewise(VectorOperators.LSHR, 12).and(NIBBLES).reinterpretAsShorts().mul(v));
                i1 = i1.add(n1.reinterpretAsInts().lanewise(VectorOperators.LSHR, 12).and(NIBBLES).reinterpretAsShorts().mul(v));
                i2 = i2.add(n2.reinterpretAsInts().lanewise(VectorOperators.LSHR, 12).and(NIBBLES).reinterpretAsShorts().mul(v));
                i3 = i3.add(n3.reinterpretAsInts().lanewise(VectorOperators.LSHR, 12).and(NIBBLES).reinterpretAsShorts().mul(v));
            }
            ShortVector sxq8 = ShortVector.fromArray(SV, a.sxq8, g * G);
            i0 = i0.sub(sxq8);
            i1 = i1.sub(sxq8);
            i2 = i2.sub(sxq8);
            i3 = i3.sub(sxq8);
            for (int part = 0; part < 2; part++) { // the G lanes as two F vectors
                int at = g * G + part * F.length(), o = OFFSETS_AT + part * G;
                FloatVector dx = FloatVector.fromArray(F, a.dx, at), s0, s1, s2, s3;
                if (q4k) { // f32 factors as 2 F shorts each
                    int s = SCALES_AT + part * G;
                    s0 = ShortVector.fromArray(SV, w, w0 + s).reinterpretAsFloats();
                    s1 = ShortVector.fromArray(SV, w, w1 + s).reinterpretAsFloats();
                    s2 = ShortVector.fromArray(SV, w, w2 + s).reinterpretAsFloats();
                    s3 = ShortVector.fromArray(SV, w, w3 + s).reinterpretAsFloats();
                } else { // f16: s 2^-112 and dx 2^112, the same product s dx (f16Scaled written out: see above)
                    int s = SCALES_AT + part * F.length();
                    s0 = ((IntVector) ShortVector.fromArray(S_HALF, w, w0 + s).convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 13).and(F16_BITS).reinterpretAsFloats();
                    s1 = ((IntVector) ShortVector.fromArray(S_HALF, w, w1 + s).convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 13).and(F16_BITS).reinterpretAsFloats();
                    s2 = ((IntVector) ShortVector.fromArray(S_HALF, w, w2 + s).convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 13).and(F16_BITS).reinterpretAsFloats();
                    s3 = ((IntVector) ShortVector.fromArray(S_HALF, w, w3 + s).convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 13).and(F16_BITS).reinterpretAsFloats();
                    dx = dx.mul(F16_SCALE);
                }
                f0 = ((FloatVector) i0.convertShape(VectorOperators.S2F, F, part)).fma(s0.mul(dx), f0);
                f1 = ((FloatVector) i1.convertShape(VectorOperators.S2F, F, part)).fma(s1.mul(dx), f1);
                f2 = ((FloatVector) i2.convertShape(VectorOperators.S2F, F, part)).fma(s2.mul(dx), f2);
                f3 = ((FloatVector) i3.convertShape(VectorOperators.S2F, F, part)).fma(s3.mul(dx), f3);
                if (q4k) { // + (o + 8 s) dx sum(xq)
                    FloatVector sum = FloatVector.fromArray(F, a.dxSum, at);
                    f0 = ShortVector.fromArray(SV, w, w0 + o).reinterpretAsFloats().fma(sum, f0);
                    f1 = ShortVector.fromArray(SV, w, w1 + o).reinterpretAsFloats().fma(sum, f1);
                    f2 = ShortVector.fromArray(SV, w, w2 + o).reinterpretAsFloats().fma(sum, f2);
                    f3 = ShortVector.fromArray(SV, w, w3 + o).reinterpretAsFloats().fma(sum, f3);
                }
            }
        }
        f0.intoArray(lanes, 0);
        f1.intoArray(lanes, F.length());
        f2.intoArray(lanes, 2 * F.length());
        f3.intoArray(lanes, 3 * F.length());
        out.setAtIndex(F32, r0, JavaKernels.sum(lanes, 0));
        out.setAtIndex(F32, r1, JavaKernels.sum(lanes, F.length()));
        out.setAtIndex(F32, r2, JavaKernels.sum(lanes, 2 * F.length()));
        out.setAtIndex(F32, r3, JavaKernels.sum(lanes, 3 * F.length()));
    }
}
