package aya.kernels;

import aya.AyaException;

import java.util.ArrayList;
import java.util.List;

/**
 * The kernel backends this machine can run, for tests parameterized over backends:
 * java always, native when {@link NativeKernels#load()} succeeds (skipped, not failed, when it cannot load).
 */
public final class Backends {

    private Backends() {
    }

    /** Backend names accepted by {@link Backend#open(String)}. */
    public static List<String> available() {
        List<String> names = new ArrayList<>();
        names.add("java");
        try (Kernels k = NativeKernels.load()) {
            names.add("native");
        } catch (AyaException | LinkageError | UnsupportedOperationException e) {
            // not built on this machine: the parity suite runs the java backend only
        }
        return names;
    }
}
