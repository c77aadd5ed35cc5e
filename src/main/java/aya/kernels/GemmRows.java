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
