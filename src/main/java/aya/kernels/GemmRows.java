package aya.kernels;

/**
 * Rows of a weight matrix as the Java f32 GEMM reads them (BLIS's packing of A): the GEMM widens every panel of rows
 * through this, so one GEMM serves the file's formats (JavaKernels) and the Java backend's packed layouts alike.
 */
@FunctionalInterface
interface GemmRows {

    /**
     * dst[dstOff, dstOff + n) = the f32 weights of row {@code row}, columns [col, col + n). The GEMM asks for k blocks:
     * col and n are multiples of its KC (256), except that the last block of a row ends at the row's end.
     */
    void widen(int row, int col, int n, float[] dst, int dstOff);
}

/** A matrix the Java backend packed at load ({@link JavaKernels#pack}): its decode kernel and its rows for the GEMM. */
interface JavaPackedMatrix extends PackedMatrix, GemmRows {

    /** out[r] = row r . x for rowStart &lt;= r &lt; rowEnd: one token (x [cols], out [rows]). */
    void matvec(java.lang.foreign.MemorySegment x, java.lang.foreign.MemorySegment out, int rowStart, int rowEnd);

    /**
     * Bytes of one row of {@code cols} weights of {@code type} in the file, for a packing of w [rows, cols]: refuses
     * rows that are not whole blocks ({@link WeightType#rowBytes}) and a w shorter than its shape.
     */
    static long fileRowBytes(WeightType type, java.lang.foreign.MemorySegment w, int rows, int cols) {
        long rowBytes = type.rowBytes(cols);
        if (w.byteSize() < rows * rowBytes) {
            throw new IllegalArgumentException(type + " matrix " + rows + "x" + cols + " needs " + rows * rowBytes
                    + " bytes, got " + w.byteSize());
        }
        return rowBytes;
    }
}
