package aya.kernels;

/**
 * Storage formats of weight matrices. A row of {@code n} weights takes {@code rowBytes(n)} bytes;
 * quantized formats pack blocks of {@code blockSize} weights into {@code blockBytes} bytes.
 * The enum replaces switches: code asks the type, not which type it is.
 */
public enum WeightType {
    F32("F32", 1, 4),
    F16("F16", 1, 2),
    BF16("BF16", 1, 2),
    /** 32 weights: fp16 scale + 32 int8 (GGUF Q8_0 numerics). */
    Q8_0("Q8_0", 32, 34),
    /** 32 weights: fp16 scale + 16 bytes of 4-bit values, offset 8 (GGUF Q4_0 numerics). */
    Q4_0("Q4_0", 32, 18);

    /** Name used in safetensors headers (and on the command line for quantized types, lower-cased). */
    public final String tag;
    public final int blockSize;
    public final int blockBytes;

    WeightType(String tag, int blockSize, int blockBytes) {
        this.tag = tag;
        this.blockSize = blockSize;
        this.blockBytes = blockBytes;
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
        for (WeightType t : values()) {
            if (t.quantized() && t.tag.equalsIgnoreCase(name)) return t;
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
            default -> null;
        };
    }
}
