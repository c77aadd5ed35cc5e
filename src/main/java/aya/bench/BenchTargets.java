package aya.bench;

import aya.AyaException;

import java.nio.file.Path;

/** Adapts the engine's model to {@link BenchTarget}. */
public final class BenchTargets {

    private BenchTargets() {
    }

    /** Loads {@code model} on {@code backend} ("java" or "native") with {@code threads} threads. */
    public static BenchTarget load(Path model, String backend, int threads) {
        throw new AyaException("the inference engine is not merged yet: only 'aya bench --bandwidth-only' works");
    }
}
