package aya.weights;

import aya.AyaException;
import aya.kernels.WeightType;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * One tensor of a checkpoint, viewed in place in its memory-mapped file (no copy).
 *
 * @param name  tensor name, e.g. {@code model.layers.0.self_attn.q_proj.weight}
 * @param dtype the safetensors dtype tag, e.g. {@code BF16}
 * @param shape dimensions, row-major
 * @param data  the tensor's bytes inside the mapped file
 * @param file  the file it came from (for error messages)
 */
public record Tensor(String name, String dtype, long[] shape, MemorySegment data, String file) {

    public long elements() {
        long n = 1;
        for (long d : shape) n *= d;
        return n;
    }

    /** The weight type the kernels read, or an error naming the tensor when the dtype is not one they read. */
    public WeightType weightType() {
        WeightType t = WeightType.fromSafetensors(dtype);
        if (t == null) {
            throw new AyaException(file + ": tensor '" + name + "' has dtype " + dtype + ", supported: F32, F16, BF16");
        }
        return t;
    }

    /** Checks the shape, naming the tensor, expected and found shape when they differ. */
    public Tensor expectShape(long... expected) {
        if (!Arrays.equals(shape, expected)) {
            throw new AyaException(file + ": tensor '" + name + "' has shape " + Arrays.toString(shape)
                    + ", expected " + Arrays.toString(expected));
        }
        return this;
    }

    @Override
    public String toString() {
        return name + " " + dtype + Arrays.toString(shape);
    }
}
