package aya.kernels;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Q8_0 weights repacked at load for a decode in 16-bit lanes, one block of 32 weights per short lane, made for 256-bit
 * vectors (AVX2, 8 float lanes; docs/performance-java.md section 44). A row's blocks are taken G at a time (a "group",
 * G = the short lanes of a vector, 16 at 256 bits; the last group padded with zero blocks), and per group the 32
 * weights of its blocks are stored as 32 vectors of G bytes, position-major in {@link NibbleActivations}' order (vector
 * t holds weight {@link #position}(t) of every block of the group), then the group's G f16 scales d as the file has
 * them (2 G bytes), the even blocks' first, then the odd ones' ({@link #evenOdd}). 34 bytes per 32 weights, the
 * file's size (f32 scales, 36 bytes, until docs/performance-java.md section 48).
 *
 * <p>The one-token product multiplies them with x quantized per block ({@link NibbleActivations}: native's Q8_0
 * activations, xq in -127..127 with an f16-rounded dx) two positions at a time: w_t xq_t + w_t+1 xq_t+1 in 16-bit
 * lanes is exact (|.| <= 2 * 128 * 127 = 32512). An int lane of that short vector holds two blocks' pair sums, block
 * 2i's in its low half and 2i + 1's in its high half; with both halves' sign bits flipped (+ 32768 each, so each half
 * is its sum + 32768 as an unsigned 16-bit number) the int lane is exactly 65536 (hi + 32768) + (lo + 32768), so
 * summing the ints as they are (wrapping) and their high halves (a logical shift) gives per group both blocks' exact
 * sums: the high one's, minus 16 x 32768, and the low one's, the ints' sum minus 65536 x the high one's minus 16 x 32768
 * (the low halves' sum is below 2^20, so nothing of it is lost). Each block's integer dot product (|.| <= 32 * 128 * 127
 * < 2^24) is then exact in f32, and per group row += that x (d dx) in the lanes (an FMA, even blocks then odd ones),
 * one horizontal sum per row at the end. d is widened as {@link PackedNibbles} widens Q4_0's (d 2^-112 from its bits,
 * times dx 2^112: the same f32 d dx; infinite and NaN scales refused at pack time). About 10 vector operations per row and block of 32 weights against the f32
 * decode's ~17 (a widening, a conversion and an FMA per 8 weights, and the block's fp16 scale); the Vector API has no
 * vpmaddubsw / vpmaddwd, which native's AVX2 kernel takes a block in.
 *
 * <p>At 512 bits the f32 decode in the file's layout takes a block in two FMAs and stays: the model packs Q8_0 at 8
 * float lanes only ({@link #PACKS}), and PackedQ8Test checks the kernel only there (the 512-bit form is never used).
 * On the Java heap, as {@link PackedNibbles}.
 */
final class PackedQ8 extends JavaPackedMatrix {

    private static final VectorSpecies<Float> F = JavaKernels.F;
    private static final VectorSpecies<Integer> I = JavaKernels.I;
    /** A full vector of shorts: one block per lane. */
    private static final VectorSpecies<Short> SV = PackedNibbles.SV;
    /** As many bytes as SV has shorts: weights and x, widened to SV as they are read. */
    private static final VectorSpecies<Byte> XB = PackedNibbles.XB;
    /** As many bytes as F has shorts (half a vector): F.length() f16 scales. */
    private static final VectorSpecies<Byte> HB = VectorSpecies.of(byte.class, PackedNibbles.S_HALF.vectorShape());
    /** Blocks per group. */
    private static final int G = PackedNibbles.G;
    private static final int BLOCK = Quant.BLOCK;
    /** Where a group's f16 scales start, in bytes from the group's start, and the group's bytes. */
    private static final int SCALES_AT = BLOCK * G, GROUP_BYTES = SCALES_AT + 2 * G;

    /** Whether the Java backend packs Q8_0 matrices: at 8 float lanes (see the class comment). */
    static final boolean PACKS = F.length() == 8;

    private final int groups;
    /** [rows][groups][32 x G weights, G f16 d as 2 G bytes (little-endian, even blocks first)]. */
    private final byte[] data;

    private PackedQ8(MemorySegment source, int rows, int cols) {
        super(WeightType.Q8_0, source, rows, cols);
        this.groups = (cols / BLOCK + G - 1) / G;
        this.data = new byte[arrayLength((long) rows * groups * GROUP_BYTES, "bytes")];
    }

    /** w [rows, cols] of Q8_0 repacked (on the heap), the rows spread over the pool's threads. */
    static PackedQ8 pack(MemorySegment w, int rows, int cols, Parallel pool) {
        long fileRowBytes = JavaPackedMatrix.fileRowBytes(WeightType.Q8_0, w, rows, cols);
        PackedQ8 p = new PackedQ8(w, rows, cols);
        int blockBytes = WeightType.Q8_0.blockBytes;
        pool.forRange(rows, 1, (worker, from, to) -> {
            byte[] file = new byte[G * blockBytes]; // one group's blocks as in the file, copied in one piece
            for (int r = from; r < to; r++) {
                for (int g = 0; g < p.groups; g++) {
                    int n = Math.min(G, cols / BLOCK - g * G), at = (r * p.groups + g) * GROUP_BYTES;
                    MemorySegment.copy(w, ValueLayout.JAVA_BYTE, r * fileRowBytes + (long) g * G * blockBytes, file, 0, n * blockBytes);
                    for (int t = 0; t < BLOCK; t++) {
                        int offset = 2 + position(t); // weight position(t) of a block in the file
                        for (int j = 0; j < n; j++) p.data[at + t * G + j] = file[j * blockBytes + offset];
                    }
                    for (int j = 0; j < n; j++) {
                        short d = (short) (file[j * blockBytes] & 0xFF | file[j * blockBytes + 1] << 8);
                        PackedNibbles.requireFiniteScale(d, WeightType.Q8_0, rows, cols, r, g * G + j);
                        int at2 = at + SCALES_AT + 2 * evenOdd(j); // little-endian: a short view's lane
                        p.data[at2] = (byte) d;
                        p.data[at2 + 1] = (byte) (d >>> 8);
                    }
                }
            }
        });
        return p;
    }

    /** PackedNibbles.f16Scaled's mask, the f16 widening written out in the decode (as a call C2 did not inline it). */
    private static final int F16_BITS = PackedNibbles.F16_BITS;
    /** Flips both halves' sign bits of an int lane: + 32768 to each as an unsigned 16-bit number. */
    private static final int FLIP = 0x80008000;
    /** What the flips add to a half's sum over a group's BLOCK / 2 pair steps. */
    private static final int FLIPPED = BLOCK / 2 * 32768;

    /** x's scales per block times 2^112 ({@link PackedNibbles#F16_SCALE}), in the lanes' order of the scales (evenOdd), per thread. */
    private static final ThreadLocal<float[]> EVEN_ODD_DX = ThreadLocal.withInitial(() -> new float[0]);

    /**
     * Where block j's factors are in its group's G (j counted from any group's start): the even blocks first, then the
     * odd ones, the order of the decode's int lanes (int lane i of a short vector holds blocks 2i and 2i + 1).
     */
    static int evenOdd(int j) {
        int g = j / G, b = j % G;
        return g * G + (b % 2) * (G / 2) + b / 2;
    }

    /** The weight index stored at step t of a group (NibbleActivations' order of xq). */
    static int position(int t) {
        return t / 4 + NibbleActivations.SLOT_OFFSET[t % 4];
    }

    @Override
    public long byteSize() {
        return data.length;
    }

    /**
     * Decode of one token: out[r] = w[r] . x for r in [rowStart, rowEnd), x quantized once per call (per thread). Four
     * rows per pass, one from each quarter of the slice ({@link #fourRowPasses}; two rows half the slice apart until
     * docs/performance-java.md section 48: four were 2-10% faster per kernel from memory there).
     */
    @Override
    public void matvec(MemorySegment x, MemorySegment out, int rowStart, int rowEnd) {
        NibbleActivations a = NibbleActivations.of(x, cols);
        float[] dx = EVEN_ODD_DX.get();
        if (dx.length < groups * G) {
            dx = new float[groups * G];
            EVEN_ODD_DX.set(dx);
        }
        for (int j = 0; j < groups * G; j++) dx[evenOdd(j)] = a.dx[j] * PackedNibbles.F16_SCALE; // d 2^-112 in the kernel
        float[] xdx = dx, lanes = new float[4 * F.length()];
        fourRowPasses(rowStart, rowEnd, (r0, r1, r2, r3) -> dot4Rows(a.xq, xdx, out, r0, r1, r2, r3, lanes));
    }

    /**
     * Rows r0 .. r3 . x into out (arithmetic in the class comment): xq as shorts (NibbleActivations' order), dx in
     * evenOdd order. Written out without helper methods: C2 must inline every Vector API call, or it boxes the vectors
     * (docs/performance-java.md sections 5-6, 20); PackedNibbles.f16Scaled too (section 48). Widening the pair sums
     * with S2I instead of the int view: C2 made part 1 a byte shuffle, a lane permute and a blend (section 44).
     */
    private void dot4Rows(short[] xq, float[] dx, MemorySegment out, int r0, int r1, int r2, int r3, float[] lanes) {
        byte[] w = data;
        FloatVector f0 = FloatVector.zero(F), f1 = f0, f2 = f0, f3 = f0;
        int rowBytes = groups * GROUP_BYTES;
        for (int g = 0; g < groups; g++) {
            IntVector both0 = IntVector.zero(I), odd0 = both0, both1 = both0, odd1 = both0, both2 = both0, odd2 = both0, both3 = both0, odd3 = both0;
            int w0 = r0 * rowBytes + g * GROUP_BYTES, w1 = r1 * rowBytes + g * GROUP_BYTES, w2 = r2 * rowBytes + g * GROUP_BYTES, w3 = r3 * rowBytes + g * GROUP_BYTES;
            int xo = g * BLOCK * G;
            for (int t = 0; t < BLOCK; t += 2) {
                int o = t * G;
                ShortVector xa = ShortVector.fromArray(SV, xq, xo + o);
                ShortVector xb = ShortVector.fromArray(SV, xq, xo + o + G);
                ShortVector p0 = ((ShortVector) ByteVector.fromArray(XB, w, w0 + o).convertShape(VectorOperators.B2S, SV, 0)).mul(xa)
                        .add(((ShortVector) ByteVector.fromArray(XB, w, w0 + o + G).convertShape(VectorOperators.B2S, SV, 0)).mul(xb));
                ShortVector p1 = ((ShortVector) ByteVector.fromArray(XB, w, w1 + o).convertShape(VectorOperators.B2S, SV, 0)).mul(xa)
                        .add(((ShortVector) ByteVector.fromArray(XB, w, w1 + o + G).convertShape(VectorOperators.B2S, SV, 0)).mul(xb));
                ShortVector p2 = ((ShortVector) ByteVector.fromArray(XB, w, w2 + o).convertShape(VectorOperators.B2S, SV, 0)).mul(xa)
                        .add(((ShortVector) ByteVector.fromArray(XB, w, w2 + o + G).convertShape(VectorOperators.B2S, SV, 0)).mul(xb));
                ShortVector p3 = ((ShortVector) ByteVector.fromArray(XB, w, w3 + o).convertShape(VectorOperators.B2S, SV, 0)).mul(xa)
                        .add(((ShortVector) ByteVector.fromArray(XB, w, w3 + o + G).convertShape(VectorOperators.B2S, SV, 0)).mul(xb));
                IntVector v0 = p0.reinterpretAsInts().lanewise(VectorOperators.XOR, FLIP);
                IntVector v1 = p1.reinterpretAsInts().lanewise(VectorOperators.XOR, FLIP);
                IntVector v2 = p2.reinterpretAsInts().lanewise(VectorOperators.XOR, FLIP);
                IntVector v3 = p3.reinterpretAsInts().lanewise(VectorOperators.XOR, FLIP);
                both0 = both0.add(v0);
                odd0 = odd0.add(v0.lanewise(VectorOperators.LSHR, 16));
                both1 = both1.add(v1);
                odd1 = odd1.add(v1.lanewise(VectorOperators.LSHR, 16));
                both2 = both2.add(v2);
                odd2 = odd2.add(v2.lanewise(VectorOperators.LSHR, 16));
                both3 = both3.add(v3);
                odd3 = odd3.add(v3.lanewise(VectorOperators.LSHR, 16));
            }
            IntVector even0 = both0.sub(odd0.lanewise(VectorOperators.LSHL, 16)).sub(FLIPPED), even1 = both1.sub(odd1.lanewise(VectorOperators.LSHL, 16)).sub(FLIPPED);
            IntVector even2 = both2.sub(odd2.lanewise(VectorOperators.LSHL, 16)).sub(FLIPPED), even3 = both3.sub(odd3.lanewise(VectorOperators.LSHL, 16)).sub(FLIPPED);
            odd0 = odd0.sub(FLIPPED);
            odd1 = odd1.sub(FLIPPED);
            odd2 = odd2.sub(FLIPPED);
            odd3 = odd3.sub(FLIPPED);
            int at = g * G;
            FloatVector dxEven = FloatVector.fromArray(F, dx, at), dxOdd = FloatVector.fromArray(F, dx, at + F.length());
            int odd = SCALES_AT + 2 * F.length();
            f0 = ((FloatVector) even0.convert(VectorOperators.I2F, 0)).fma(((IntVector) ByteVector.fromArray(HB, w, w0 + SCALES_AT).reinterpretAsShorts().convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 13).and(F16_BITS).reinterpretAsFloats().mul(dxEven), f0);
            f1 = ((FloatVector) even1.convert(VectorOperators.I2F, 0)).fma(((IntVector) ByteVector.fromArray(HB, w, w1 + SCALES_AT).reinterpretAsShorts().convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 13).and(F16_BITS).reinterpretAsFloats().mul(dxEven), f1);
            f2 = ((FloatVector) even2.convert(VectorOperators.I2F, 0)).fma(((IntVector) ByteVector.fromArray(HB, w, w2 + SCALES_AT).reinterpretAsShorts().convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 13).and(F16_BITS).reinterpretAsFloats().mul(dxEven), f2);
            f3 = ((FloatVector) even3.convert(VectorOperators.I2F, 0)).fma(((IntVector) ByteVector.fromArray(HB, w, w3 + SCALES_AT).reinterpretAsShorts().convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 13).and(F16_BITS).reinterpretAsFloats().mul(dxEven), f3);
            f0 = ((FloatVector) odd0.convert(VectorOperators.I2F, 0)).fma(((IntVector) ByteVector.fromArray(HB, w, w0 + odd).reinterpretAsShorts().convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 13).and(F16_BITS).reinterpretAsFloats().mul(dxOdd), f0);
            f1 = ((FloatVector) odd1.convert(VectorOperators.I2F, 0)).fma(((IntVector) ByteVector.fromArray(HB, w, w1 + odd).reinterpretAsShorts().convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 13).and(F16_BITS).reinterpretAsFloats().mul(dxOdd), f1);
            f2 = ((FloatVector) odd2.convert(VectorOperators.I2F, 0)).fma(((IntVector) ByteVector.fromArray(HB, w, w2 + odd).reinterpretAsShorts().convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 13).and(F16_BITS).reinterpretAsFloats().mul(dxOdd), f2);
            f3 = ((FloatVector) odd3.convert(VectorOperators.I2F, 0)).fma(((IntVector) ByteVector.fromArray(HB, w, w3 + odd).reinterpretAsShorts().convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 13).and(F16_BITS).reinterpretAsFloats().mul(dxOdd), f3);
        }
        f0.intoArray(lanes, 0);
        f1.intoArray(lanes, F.length());
        f2.intoArray(lanes, 2 * F.length());
        f3.intoArray(lanes, 3 * F.length());
        out.setAtIndex(JavaKernels.F32, r0, JavaKernels.sum(lanes, 0));
        out.setAtIndex(JavaKernels.F32, r1, JavaKernels.sum(lanes, F.length()));
        out.setAtIndex(JavaKernels.F32, r2, JavaKernels.sum(lanes, 2 * F.length()));
        out.setAtIndex(JavaKernels.F32, r3, JavaKernels.sum(lanes, 3 * F.length()));
    }
}
