package aya.kernels;

import java.lang.foreign.MemorySegment;

/**
 * A matrix the Java backend packed at load ({@link JavaKernels#pack}): its decode kernel reads the packed copy, its
 * rows for the GEMM are widened from the file's own bytes (a packing never changes the prefill's values). What the
 * packings share is here; each subclass holds its layout and its decode.
 */
abstract class JavaPackedMatrix implements PackedMatrix, GemmRows {

    final WeightType sourceType;
    /** The file's bytes of the matrix (mapped by the model, alive as long as it is): what the GEMM widens. */
    final MemorySegment source;
    final int rows, cols;

    JavaPackedMatrix(WeightType sourceType, MemorySegment source, int rows, int cols) {
        this.sourceType = sourceType;
        this.source = source;
        this.rows = rows;
        this.cols = cols;
    }

    /** out[r] = row r . x for rowStart &lt;= r &lt; rowEnd: one token (x [cols], out [rows]). */
    public abstract void matvec(MemorySegment x, MemorySegment out, int rowStart, int rowEnd);

    /** One pass of a four-row decode kernel: rows r0 .. r3 (all four the same for a row left over). */
    interface FourRows {
        void pass(int r0, int r1, int r2, int r3);
    }

    /**
     * The passes of a four-row decode over rows [rowStart, rowEnd): one row from each quarter of the slice per pass, so
     * each of the four row streams reads its own pages (docs/performance-java.md section 5). The stream of quarter k
     * starts k rows into its quarter and wraps around to its start, so the streams are a quarter plus one row apart: a
     * quarter's bytes were sometimes a distance the four streams ran slowly at (a 2048 x 11008 Q4_0 product in one call
     * at 18 bytes per block: 1.4x slower from memory, section 48). The at most three rows past the quarters take a pass
     * each. Which pass computes a row does not change its result.
     */
    static void fourRowPasses(int rowStart, int rowEnd, FourRows kernel) {
        int q = (rowEnd - rowStart) / 4;
        for (int p = 0; p < q; p++) {
            kernel.pass(rowStart + p, rowStart + q + (p + 1) % q, rowStart + 2 * q + (p + 2) % q, rowStart + 3 * q + (p + 3) % q);
        }
        for (int row = rowStart + 4 * q; row < rowEnd; row++) kernel.pass(row, row, row, row);
    }

    /**
     * The GEMM's panel widening: dst[dstOff, dstOff + n) = weights [col, col + n) of row {@code row} (whole blocks),
     * the file's values bit for bit, from the file's bytes, whose blocks keep their weights together (a packed layout
     * spreads a block over several vectors: a gather per block made the Q4_0 prefill 10-23% slower).
     */
    @Override
    public final void widen(int row, int col, int n, float[] dst, int dstOff) {
        JavaKernels.widenRow(sourceType, source, (long) row * cols + col, n, dst, dstOff);
    }

    @Override
    public final WeightType sourceType() {
        return sourceType;
    }

    @Override
    public final int rows() {
        return rows;
    }

    @Override
    public final int cols() {
        return cols;
    }

    @Override
    public String toString() {
        return getClass().getSimpleName() + "[" + sourceType + " " + rows + "x" + cols + "]";
    }

    /**
     * The length of an array of {@code elements} {@code unit}s for this matrix's packing, refused (with the matrix
     * named) past the largest Java array.
     */
    int arrayLength(long elements, String unit) {
        if (elements > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(sourceType + " matrix [" + rows + ", " + cols + "] is too large to pack ("
                    + elements + " " + unit + ", at most 2^31 - 9)");
        }
        return (int) elements;
    }

    /**
     * Bytes of one row of {@code cols} weights of {@code type} in the file, for a packing of w [rows, cols]: refuses
     * rows that are not whole blocks ({@link WeightType#rowBytes}) and a w shorter than its shape.
     */
    static long fileRowBytes(WeightType type, MemorySegment w, int rows, int cols) {
        long rowBytes = type.rowBytes(cols);
        if (w.byteSize() < rows * rowBytes) {
            throw new IllegalArgumentException(type + " matrix " + rows + "x" + cols + " needs " + rows * rowBytes
                    + " bytes, got " + w.byteSize());
        }
        return rowBytes;
    }
}
