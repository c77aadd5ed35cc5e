package aya.kernels;

/**
 * Storage formats of weight matrices. A row of {@code n} weights takes {@code rowBytes(n)} bytes;
 * quantized formats pack blocks of {@code blockSize} weights into {@code blockBytes} bytes.
 * The enum replaces switches: code asks the type, not which type it is.
 */
public enum WeightType {
    F32("F32", 1, 4, 0),
    F16("F16", 1, 2, 1),
    BF16("BF16", 1, 2, 30),
    /** 32 weights: fp16 scale + 32 int8 (GGUF Q8_0 numerics). */
    Q8_0("Q8_0", 32, 34, 8),
    /** 32 weights: fp16 scale + 16 bytes of 4-bit values, offset 8 (GGUF Q4_0 numerics). */
    Q4_0("Q4_0", 32, 18, 2),
    /** 32 weights: fp16 scale, 4 bytes of 5th bits, 16 bytes of low nibbles, offset 16 (GGUF Q5_0). */
    Q5_0("Q5_0", 32, 22, 6),
    /** 256 weights: fp16 d, fp16 dmin, 12 bytes of 6-bit scales and mins for 8 sub-blocks, 128 bytes of nibbles (GGUF Q4_K). */
    Q4_K("Q4_K", 256, 144, 12),
    /** 256 weights: 128 bytes low 4 bits, 64 bytes high 2 bits, 16 int8 scales, fp16 d (GGUF Q6_K). */
    Q6_K("Q6_K", 256, 210, 14);

    /** Name used in safetensors headers (and on the command line for quantized types, lower-cased). */
    public final String tag;
    public final int blockSize;
    public final int blockBytes;
    /** The type's id in GGUF files ({@code ggml_type}). */
    public final int ggmlType;

    WeightType(String tag, int blockSize, int blockBytes, int ggmlType) {
        this.tag = tag;
        this.blockSize = blockSize;
        this.blockBytes = blockBytes;
        this.ggmlType = ggmlType;
    }

    public long rowBytes(long n) {
        if (n % blockSize != 0) {
            throw new IllegalArgumentException(this + " rows need a multiple of " + blockSize + " weights, got " + n);
        }
        return n / blockSize * blockBytes;
    }

    public boolean quantized() {
        return blockSize > 1;
    }

    /** The quantized type named on the command line ({@code q8_0}, {@code q4_0}; any case), or null for anything else. */
    public static WeightType quantizedNamed(String name) {
        for (WeightType t : new WeightType[] {Q8_0, Q4_0}) { // the types --quant can make
            if (t.tag.equalsIgnoreCase(name)) return t;
        }
        return null;
    }

    /** The type with GGUF id {@code id}, or null when this engine cannot read it. */
    public static WeightType fromGgml(int id) {
        for (WeightType t : values()) {
            if (t.ggmlType == id) return t;
        }
        return null;
    }

    /** The type stored under a safetensors dtype tag, or null when this engine cannot read it. */
    public static WeightType fromSafetensors(String dtype) {
        return switch (dtype) {
            case "F32" -> F32;
            case "F16" -> F16;
            case "BF16" -> BF16;
            case "Q8_0" -> Q8_0; // only from the quantized-weights cache (aya.weights.QuantizedWeights), never a file's dtype
            case "Q4_0" -> Q4_0;
            case "Q5_0" -> Q5_0; // these three only from GGUF files (aya.weights.GgufFile names tensors by type tag)
            case "Q4_K" -> Q4_K;
            case "Q6_K" -> Q6_K;
            default -> null;
        };
    }
}
