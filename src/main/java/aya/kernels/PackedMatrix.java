package aya.kernels;

/**
 * A weight matrix copied at load into a backend's own layout (see {@link Kernels#pack}), for kernels that read that
 * layout with fewer operations than the file's (llama.cpp calls this repacking). Lives until the backend is closed.
 */
public interface PackedMatrix {

    /** The file's type of the matrix this was made from. */
    WeightType sourceType();

    int rows();

    int cols();

    /** Bytes a full product reads (what a decode step streams instead of the file's matrix). */
    long byteSize();
}
