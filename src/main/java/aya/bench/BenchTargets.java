package aya.bench;

import aya.AyaException;
import aya.config.ModelConfig;
import aya.kernels.Backend;
import aya.kernels.Kernels;
import aya.kernels.WeightType;
import aya.model.Activations;
import aya.model.AyaForward;
import aya.model.ForwardProfile;
import aya.weights.Tensor;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Locale;
import java.util.SplittableRandom;

/** Adapts the engine ({@link AyaForward}) to {@link BenchTarget}. */
public final class BenchTargets {

    private BenchTargets() {
    }

    /**
     * Loads {@code model} on {@code backend} ("java" or "native", never a silent fallback) with {@code threads}
     * threads and a state holding {@code context} positions.
     */
    public static BenchTarget load(Path model, String backend, int threads, int context) {
        return load(model, backend, threads, context, null);
    }

    /** Like {@link #load(Path, String, int, int)} with the weight matrices quantized to {@code quant} (null: as stored). */
    public static BenchTarget load(Path model, String backend, int threads, int context, WeightType quant) {
        return load(model, backend, threads, context, quant, Activations.F32, false);
    }

    /**
     * Like {@link #load(Path, String, int, int, WeightType)} with the given prefill activation precision; with
     * {@code profile}, prefill and decode steps are timed per operation (two profiles).
     */
    public static BenchTarget load(Path model, String backend, int threads, int context, WeightType quant,
                                   Activations activations, boolean profile) {
        Kernels kernels = Backend.open(backend);
        AyaForward forward;
        try {
            forward = AyaForward.load(model, kernels, threads, quant);
        } catch (RuntimeException e) {
            kernels.close();
            throw e;
        }
        try {
            forward.activations(activations);
        } catch (RuntimeException e) {
            forward.close();
            throw e;
        }
        return new EngineTarget(forward, backend, context, profile ? new ForwardProfile() : null,
                profile ? new ForwardProfile() : null);
    }

    /**
     * Makes segment s resident and returns its size. A mapped segment goes through {@link MemorySegment#load}:
     * madvise(WILLNEED), so the kernel reads ahead, then a read of every page. Other segments are memory the engine
     * wrote itself (e.g. a copy it built at load), resident already.
     */
    static long touch(MemorySegment s) {
        if (s.isMapped()) s.load();
        return s.byteSize();
    }

    /** One model + one state; positions move by rewinding the state (only the cache below pos is kept). */
    static final class EngineTarget implements BenchTarget {
        private final AyaForward model;
        private final AyaForward.State state;
        private final String backend;
        private final int[] one = new int[1];
        private final ForwardProfile profile;        // decode steps; null: not profiling
        private final ForwardProfile prefillProfile; // prefills; null: not profiling
        private int untimedDecodes = BenchRunner.WARMUP_DECODES; // the runner's warm-up decodes: not profiled
        private int untimedPrefills = 1;             // and its warm-up prefill

        EngineTarget(AyaForward model, String backend, int context, ForwardProfile profile, ForwardProfile prefillProfile) {
            this.model = model;
            this.backend = backend;
            this.profile = profile;
            this.prefillProfile = prefillProfile;
            AyaForward.State s = null;
            try {
                s = model.newState(context);
            } catch (RuntimeException e) {
                model.close();
                throw e;
            }
            this.state = s;
        }

        @Override public String backend() { return backend; }

        @Override public String kernels() { return model.kernels().name(); }

        @Override
        public String quant() {
            Tensor t = model.tensors().get("model.layers.0.mlp.gate_proj.weight");
            return t == null ? "?" : t.weightType().name().toLowerCase(Locale.ROOT);
        }

        @Override public String activations() { return model.activations().label(); }

        @Override public long weightBytes() { return model.weightBytes(); }

        @Override public long packedBytes() { return model.packedBytes(); }

        @Override
        public long bytesReadPerDecodeToken(int pos) {
            ModelConfig c = model.config();
            long keys = pos + 1L; // the new token attends to itself and every earlier position
            long kvRow = 2L * c.kvDim() * Float.BYTES; // one position's K and V in one layer (f32 cache)
            long kv = 0;
            for (int l = 0; l < c.numLayers(); l++) {
                kv += kvRow * (c.isSliding(l) ? Math.min(keys, c.slidingWindow()) : keys);
            }
            return model.decodeWeightBytes() + kv; // every matrix once (a tied head reads the embedding table)
        }

        @Override
        public long touchWeights() {
            long bytes = 0;
            for (Tensor t : model.tensors().values()) {
                bytes += touch(t.data());
            }
            return bytes;
        }

        @Override public int vocabSize() { return model.config().vocabSize(); }

        @Override public int maxPositions() { return state.context(); }

        @Override
        public void fillContext(int depth) {
            state.reset();
            SplittableRandom random = new SplittableRandom(depth);
            int block = 256;
            for (int done = 0; done < depth; done += block) {
                int[] tokens = new int[Math.min(block, depth - done)];
                for (int i = 0; i < tokens.length; i++) tokens[i] = random.nextInt(vocabSize());
                model.forward(state, tokens);
            }
        }

        @Override
        public void prefill(int[] tokens, int pos0) {
            moveTo(pos0);
            forward(tokens, prefillProfile != null && untimedPrefills-- <= 0 ? prefillProfile : null);
        }

        @Override
        public void decode(int token, int pos) {
            moveTo(pos);
            one[0] = token;
            forward(one, profile != null && untimedDecodes-- <= 0 ? profile : null);
        }

        /** One forward pass, its ops timed into {@code timedInto} unless that is null. */
        private void forward(int[] tokens, ForwardProfile timedInto) {
            if (timedInto != null) model.profile(timedInto);
            try {
                model.forward(state, tokens);
            } finally {
                if (timedInto != null) model.profile(null);
            }
        }

        @Override
        public String decodeProfile() {
            return profile == null || profile.passes() == 0 ? null : profile.report();
        }

        @Override
        public String prefillProfile() {
            return prefillProfile == null || prefillProfile.passes() == 0 ? null : prefillProfile.report();
        }

        private void moveTo(int pos) {
            if (pos > state.position()) {
                throw new IllegalStateException("position " + pos + " is past the filled context " + state.position());
            }
            try {
                state.rewind(pos);
            } catch (IllegalArgumentException e) {
                // the sliding layers' ring has wrapped: it no longer holds the window of position pos
                throw new AyaException("cannot run the tests at --depth " + pos + ": " + e.getMessage()
                        + " (use a smaller --depth or --prompt-tokens)");
            }
        }

        @Override
        public void close() {
            state.close();
            model.close();
        }
    }
}
