package aya.kernels;

import aya.AyaException;

/** Picks the kernel backend: {@code java}, {@code native} or {@code auto} (native, else java with one warning). */
public final class Backend {

    private Backend() {
    }

    public static final String CHOICES = "java, native, auto";

    /** Opens the backend named by {@code choice}; {@code auto} falls back to java and says why on stderr. */
    public static Kernels open(String choice) {
        return switch (choice == null ? "auto" : choice.toLowerCase()) {
            case "java" -> new JavaKernels();
            case "native" -> NativeKernels.load();
            case "auto" -> {
                try {
                    yield NativeKernels.load();
                } catch (AyaException | LinkageError e) {
                    System.err.println("aya: warning: native backend unavailable (" + e.getMessage() + "), using the java backend");
                    yield new JavaKernels();
                }
            }
            default -> throw new AyaException("unknown backend '" + choice + "', expected one of: " + CHOICES);
        };
    }
}
