package aya.kernels;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A Q6_K matrix repacked at load as one signed byte per weight (its 6-bit value q minus 32), for a decode in 16-bit
 * lanes, one block of 32 weights per short lane, made for 256-bit vectors (AVX2, 8 float lanes; docs/performance-java.md
 * section 45). {@link PackedQ6K}'s three 6-bit planes cost ~19 vector operations to unpack 8 values per lane; here a
 * weight is one byte that the load widens to a short ({@code vpmovsxbw}), at 1.08 bytes per weight against 0.83.
 *
 * <p>Layout, as {@link PackedQ8}: a row's blocks G = 16 at a time (a group; the last one padded with zero blocks), per
 * group 32 vectors of G bytes, position-major in {@link NibbleActivations}' order (vector t holds weight
 * {@link PackedQ8#position}(t) of each block), then the two super-blocks' d as f32 (8 bytes), then the blocks' int8
 * sub-block scales: sub-block 0 of the even blocks, of the odd ones, sub-block 1 of the even blocks, of the odd ones
 * (8 bytes each; {@link PackedQ8#evenOdd}). 552 bytes per 512 weights (the file: 420).
 *
 * <p>The one-token product multiplies by x quantized per block ({@link NibbleActivations}: native's Q8_0 activations).
 * Per lane, the 8 products of one slot (8 weights of one sub-block of 16) are summed in 16 bits exactly
 * (|.| <= 8 * 32 * 127 = 32512); a sub-block's two slot sums are widened to ints by the int view (lane i: block 2i in
 * the low half, 2i + 1 in the high half, sign-extended by shifts) and added; per block the two sub-blocks' sums times
 * their scales (|.| <= 2 * 65024 * 128 < 2^24: exact, also as f32), converted, times d dx (two f16 values: exact),
 * added to the row's f32 lanes (even blocks, then odd ones): one rounding per block. One horizontal sum per row.
 *
 * <p>Only at 8 float lanes ({@link #PACKS}): at 16 the model keeps {@link PackedQ6K} (not measured here: no AVX-512 host
 * in session 20). The prefill GEMM widens the file's own bytes. On the Java heap, as {@link PackedNibbles}.
 */
final class PackedQ6KInt8 extends JavaPackedMatrix {

    private static final VectorSpecies<Float> F = JavaKernels.F;
    private static final VectorSpecies<Integer> I = JavaKernels.I;
    private static final VectorSpecies<Short> SV = PackedNibbles.SV;
    /** As many bytes as SV has shorts: a position's weights, widened to SV as they are read. */
    private static final VectorSpecies<Byte> XB = PackedNibbles.XB;
    /** F.length() bytes: one int8 scale per int lane. */
    private static final VectorSpecies<Byte> FB = JavaKernels.QB;
    /** A full vector of bytes: the group's two d (and the scales after them) as F floats. */
    private static final VectorSpecies<Byte> DB = VectorSpecies.of(byte.class, F.vectorShape());
    private static final int G = PackedNibbles.G, BLOCK = Quant.BLOCK;
    /** Blocks of 32 per super-block of 256. */
    private static final int SUPER = KQuant.QK_K / BLOCK;
    /** Where a group's two d start, its scales, and its bytes. */
    private static final int D_AT = BLOCK * G, SCALES_AT = D_AT + 4 * (G / SUPER), GROUP_BYTES = SCALES_AT + 2 * G;
    /** Int lane i holds blocks 2i and 2i + 1, both of super-block i / 4 (of the group's two): lane i takes d i / 4. */
    private static final VectorShuffle<Float> D_LANES = VectorShuffle.fromOp(F, i -> i / (SUPER / 2));

    /** Whether the Java backend packs Q6_K this way: at 8 float lanes (G = 16 blocks of two d). */
    static final boolean PACKS = F.length() == 8 && FB != null;

    private final int groups;
    /** [rows][groups][32 x G weights q - 32, 2 f32 d, 2 x G int8 scales] (above). */
    private final byte[] data;

    private PackedQ6KInt8(MemorySegment source, int rows, int cols) {
        super(WeightType.Q6_K, source, rows, cols);
        this.groups = (cols / BLOCK + G - 1) / G;
        this.data = new byte[arrayLength((long) rows * groups * GROUP_BYTES, "bytes")];
    }

    /** w [rows, cols] of Q6_K (cols a multiple of 256) repacked (on the heap), the rows spread over the pool. */
    static PackedQ6KInt8 pack(MemorySegment w, int rows, int cols, Parallel pool) {
        PackedQ6KInt8 p = new PackedQ6KInt8(w, rows, cols);
        PackedQ6K.forEachSuperBlock(w, rows, cols, pool, p::putSuperBlock);
        return p;
    }

    /** The Q6_K super-block at byte at of w as blocks b .. b + 7 of row r (q: its 256 values). */
    private void putSuperBlock(int r, int b, MemorySegment w, long at, byte[] q) {
        int g = b / G, group = (r * groups + g) * GROUP_BYTES;
        int bits = Float.floatToRawIntBits(Float.float16ToFloat(w.get(Quant.U16_LE, at + 208)));
        int dAt = group + D_AT + 4 * (b % G / SUPER);
        for (int i = 0; i < 4; i++) data[dAt + i] = (byte) (bits >>> 8 * i); // little-endian: a float view's lane
        for (int i = 0; i < SUPER; i++) {
            int j = (b + i) % G;
            for (int t = 0; t < BLOCK; t++) data[group + t * G + j] = (byte) (q[BLOCK * i + PackedQ8.position(t)] - 32);
            for (int h = 0; h < 2; h++) {
                data[group + SCALES_AT + h * G + PackedQ8.evenOdd(j)] = w.get(ValueLayout.JAVA_BYTE, at + 192 + 2 * i + h);
            }
        }
    }

    @Override
    public long byteSize() {
        return data.length;
    }

    // ---------------------------------------------------------------------------------------------- decode

    /** x's scales per block in the int lanes' order (evenOdd), per thread. */
    private static final ThreadLocal<float[]> EVEN_ODD_DX = ThreadLocal.withInitial(() -> new float[0]);

    /**
     * Decode of one token: out[r] = w[r] . x for r in [rowStart, rowEnd), x quantized once per call (per thread). Two
     * rows per pass, half the slice apart (each streams from its own pages); a row left over takes a pass with both
     * "rows" the same.
     */
    @Override
    public void matvec(MemorySegment x, MemorySegment out, int rowStart, int rowEnd) {
        NibbleActivations a = NibbleActivations.of(x, cols);
        float[] dx = EVEN_ODD_DX.get();
        if (dx.length < groups * G) {
            dx = new float[groups * G];
            EVEN_ODD_DX.set(dx);
        }
        for (int j = 0; j < groups * G; j++) dx[PackedQ8.evenOdd(j)] = a.dx[j];
        int gap = (rowEnd - rowStart) / 2, passes = gap + (rowEnd - rowStart) % 2;
        float[] lanes = new float[2 * F.length()];
        for (int p = 0; p < passes; p++) {
            dot2Rows(a.xq, dx, out, p < gap ? rowStart + p : rowStart + gap + p, p < gap ? gap : 0, lanes);
        }
    }

    /**
     * Rows row and row + gap . x into out (arithmetic in the class comment): xq as shorts (NibbleActivations' order:
     * step t = 4k + s is slot s's position k; slots 0 and 2 are sub-block 0, 1 and 3 sub-block 1), dx in evenOdd
     * order. Written out without helper methods: C2 must inline every Vector API call, or it boxes the vectors.
     */
    private void dot2Rows(short[] xq, float[] dx, MemorySegment out, int row, int gap, float[] lanes) {
        byte[] w = data;
        FloatVector f0 = FloatVector.zero(F), f1 = f0;
        int rowBytes = groups * GROUP_BYTES;
        for (int g = 0; g < groups; g++) {
            int w0 = row * rowBytes + g * GROUP_BYTES, w1 = w0 + gap * rowBytes;
            int xo = g * BLOCK * G;
            ShortVector a0 = ShortVector.zero(SV), b0 = a0, c0 = a0, e0 = a0, a1 = a0, b1 = a0, c1 = a0, e1 = a0; // slot 0, 1, 2, 3 sums
            for (int t = 0; t < BLOCK; t += 4) {
                int o = t * G;
                ShortVector x0 = ShortVector.fromArray(SV, xq, xo + o), x1 = ShortVector.fromArray(SV, xq, xo + o + G);
                ShortVector x2 = ShortVector.fromArray(SV, xq, xo + o + 2 * G), x3 = ShortVector.fromArray(SV, xq, xo + o + 3 * G);
                a0 = a0.add(((ShortVector) ByteVector.fromArray(XB, w, w0 + o).convertShape(VectorOperators.B2S, SV, 0)).mul(x0));
                b0 = b0.add(((ShortVector) ByteVector.fromArray(XB, w, w0 + o + G).convertShape(VectorOperators.B2S, SV, 0)).mul(x1));
                c0 = c0.add(((ShortVector) ByteVector.fromArray(XB, w, w0 + o + 2 * G).convertShape(VectorOperators.B2S, SV, 0)).mul(x2));
                e0 = e0.add(((ShortVector) ByteVector.fromArray(XB, w, w0 + o + 3 * G).convertShape(VectorOperators.B2S, SV, 0)).mul(x3));
                a1 = a1.add(((ShortVector) ByteVector.fromArray(XB, w, w1 + o).convertShape(VectorOperators.B2S, SV, 0)).mul(x0));
                b1 = b1.add(((ShortVector) ByteVector.fromArray(XB, w, w1 + o + G).convertShape(VectorOperators.B2S, SV, 0)).mul(x1));
                c1 = c1.add(((ShortVector) ByteVector.fromArray(XB, w, w1 + o + 2 * G).convertShape(VectorOperators.B2S, SV, 0)).mul(x2));
                e1 = e1.add(((ShortVector) ByteVector.fromArray(XB, w, w1 + o + 3 * G).convertShape(VectorOperators.B2S, SV, 0)).mul(x3));
            }
            // per int lane: blocks 2i (low half, sign-extended by << 16 >> 16) and 2i + 1 (>> 16); sub-block 0 = slots 0, 2
            IntVector p = a0.reinterpretAsInts(), q = c0.reinterpretAsInts();
            IntVector even0 = p.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(q.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
            IntVector odd0 = p.lanewise(VectorOperators.ASHR, 16).add(q.lanewise(VectorOperators.ASHR, 16));
            p = b0.reinterpretAsInts();
            q = e0.reinterpretAsInts();
            IntVector even1 = p.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(q.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
            IntVector odd1 = p.lanewise(VectorOperators.ASHR, 16).add(q.lanewise(VectorOperators.ASHR, 16));
            int s = w0 + SCALES_AT;
            IntVector even = even0.mul((IntVector) ByteVector.fromArray(FB, w, s).convertShape(VectorOperators.B2I, I, 0))
                    .add(even1.mul((IntVector) ByteVector.fromArray(FB, w, s + G).convertShape(VectorOperators.B2I, I, 0)));
            IntVector odd = odd0.mul((IntVector) ByteVector.fromArray(FB, w, s + G / 2).convertShape(VectorOperators.B2I, I, 0))
                    .add(odd1.mul((IntVector) ByteVector.fromArray(FB, w, s + G + G / 2).convertShape(VectorOperators.B2I, I, 0)));
            FloatVector d = ByteVector.fromArray(DB, w, w0 + D_AT).reinterpretAsFloats().rearrange(D_LANES);
            FloatVector dxEven = FloatVector.fromArray(F, dx, g * G), dxOdd = FloatVector.fromArray(F, dx, g * G + F.length());
            f0 = ((FloatVector) even.convert(VectorOperators.I2F, 0)).fma(d.mul(dxEven), f0);
            f0 = ((FloatVector) odd.convert(VectorOperators.I2F, 0)).fma(d.mul(dxOdd), f0);

            p = a1.reinterpretAsInts();
            q = c1.reinterpretAsInts();
            even0 = p.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(q.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
            odd0 = p.lanewise(VectorOperators.ASHR, 16).add(q.lanewise(VectorOperators.ASHR, 16));
            p = b1.reinterpretAsInts();
            q = e1.reinterpretAsInts();
            even1 = p.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(q.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
            odd1 = p.lanewise(VectorOperators.ASHR, 16).add(q.lanewise(VectorOperators.ASHR, 16));
            s = w1 + SCALES_AT;
            even = even0.mul((IntVector) ByteVector.fromArray(FB, w, s).convertShape(VectorOperators.B2I, I, 0))
                    .add(even1.mul((IntVector) ByteVector.fromArray(FB, w, s + G).convertShape(VectorOperators.B2I, I, 0)));
            odd = odd0.mul((IntVector) ByteVector.fromArray(FB, w, s + G / 2).convertShape(VectorOperators.B2I, I, 0))
                    .add(odd1.mul((IntVector) ByteVector.fromArray(FB, w, s + G + G / 2).convertShape(VectorOperators.B2I, I, 0)));
            d = ByteVector.fromArray(DB, w, w1 + D_AT).reinterpretAsFloats().rearrange(D_LANES);
            f1 = ((FloatVector) even.convert(VectorOperators.I2F, 0)).fma(d.mul(dxEven), f1);
            f1 = ((FloatVector) odd.convert(VectorOperators.I2F, 0)).fma(d.mul(dxOdd), f1);
        }
        f0.intoArray(lanes, 0);
        f1.intoArray(lanes, F.length());
        out.setAtIndex(JavaKernels.F32, row, JavaKernels.sum(lanes, 0));
        out.setAtIndex(JavaKernels.F32, row + gap, JavaKernels.sum(lanes, F.length()));
    }
}
