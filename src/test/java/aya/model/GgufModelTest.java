package aya.model;

import aya.AyaException;
import aya.kernels.Backend;
import aya.kernels.Backends;
import aya.kernels.WeightType;
import aya.weights.Npy;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Consumer;

import static aya.weights.GgufFixtures.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * GGUF files run through the same forward pass as safetensors: a bf16 GGUF gives bit for bit the logits of the HF
 * folder it was converted from; a quantized GGUF stays within a stated bound of transformers run on the weights it
 * really holds (dequantized by gguf-py); a file that does not describe the model's tensors is refused.
 */
class GgufModelTest {

    static List<String> backends() {
        return Backends.available();
    }

    static int[] inputIds() {
        return ModelFixtures.ints(ModelFixtures.json(DIR.resolve("input_ids.json")).get("ids"));
    }

    static float[] logits(AyaForward model, int[] ids) {
        int vocab = model.config().vocabSize();
        float[] all = new float[ids.length * vocab];
        try (AyaForward.State s = model.newState(ids.length)) {
            model.forwardAll(s, ids, (i, row) -> MemorySegment.copy(row, ValueLayout.JAVA_FLOAT, 0, all, i * vocab, vocab));
        }
        return all;
    }

    /** Greedy continuation by the forward pass alone (prefill, then one token at a time). */
    static int[] greedy(AyaForward model, int[] prompt, int n) {
        int vocab = model.config().vocabSize();
        int[] out = new int[n];
        try (AyaForward.State s = model.newState(prompt.length + n)) {
            float[] last = new float[vocab];
            model.forwardAll(s, prompt, (i, row) -> MemorySegment.copy(row, ValueLayout.JAVA_FLOAT, 0, last, 0, vocab));
            for (int k = 0; k < n; k++) {
                int best = 0;
                for (int v = 1; v < vocab; v++) if (last[v] > last[best]) best = v;
                out[k] = best;
                model.forwardAll(s, new int[] {best}, (i, row) -> MemorySegment.copy(row, ValueLayout.JAVA_FLOAT, 0, last, 0, vocab));
            }
        }
        return out;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void bf16GgufGivesTheLogitsOfItsHfFolderAndTheSameGreedyIds(String backend) {
        int[] ids = inputIds();
        try (AyaForward gguf = AyaForward.load(TINY_BF16, Backend.open(backend), 2);
             AyaForward hf = AyaForward.load(TINY_HF, Backend.open(backend), 2)) {
            assertEquals(hf.config().vocabSize(), gguf.config().vocabSize());
            assertArrayEquals(hf.config().slidingLayers(), gguf.config().slidingLayers());
            assertEquals(hf.config().logitScale(), gguf.config().logitScale());
            assertTrue(gguf.headTied());
            float[] a = logits(gguf, ids), b = logits(hf, ids);
            if (backend.equals("java")) {
                assertArrayEquals(b, a, "bf16 GGUF and safetensors logits must be identical on the java backend");
            } else {
                // the native decode loop starts each row's aligned steps after a head that depends on where the
                // tensor sits in its file (GGUF: 32-byte alignment, safetensors: anywhere), so the f32 sums may
                // round differently: within f32 rounding, not bit for bit
                double maxB = 0, diff = 0;
                for (int i = 0; i < a.length; i++) {
                    maxB = Math.max(maxB, Math.abs(b[i]));
                    diff = Math.max(diff, Math.abs(a[i] - b[i]));
                }
                assertTrue(diff <= 1e-6 * maxB, "bf16 GGUF and safetensors logits differ by " + diff + " of " + maxB);
            }
            // and both are transformers' within the f32 tolerance of the safetensors tests
            Npy.Matrix ref = Npy.read(TINY_HF.resolve("logits.npy"));
            double maxRef = 0, err = 0;
            for (int i = 0; i < a.length; i++) {
                maxRef = Math.max(maxRef, Math.abs(ref.data()[i]));
                err = Math.max(err, Math.abs(ref.data()[i] - a[i]));
            }
            assertTrue(maxRef > 1 && err <= 1e-4 * maxRef, "max error " + err + " of " + maxRef);
            var g = ModelFixtures.json(TINY_HF.resolve("greedy.json"));
            int[] expected = ModelFixtures.ints(g.get("continuation"));
            assertArrayEquals(expected, greedy(gguf, ModelFixtures.ints(g.get("prompt")), expected.length), "transformers' greedy ids");
        }
    }

    /**
     * Max |logit error| / max |logit| against transformers on the dequantized weights: only the 8-bit quantization
     * of the activations (as in llama.cpp's integer dot products) separates the two. Measured (native avx512 and
     * java): Q8_0 0.035, Q4_0 0.033; these random 64-wide models amplify it more than trained weights do.
     */
    static final double QUANTIZED_BOUND = 0.06;

    static void assertCloseToDequantizedReference(Path file, String backend) {
        int[] ids = inputIds();
        Npy.Matrix ref = Npy.read(Path.of(file + ".logits.npy"));
        try (AyaForward model = AyaForward.load(file, Backend.open(backend), 2)) {
            float[] got = logits(model, ids);
            assertEquals(ref.data().length, got.length);
            double maxRef = 0, err = 0;
            for (int i = 0; i < got.length; i++) {
                maxRef = Math.max(maxRef, Math.abs(ref.data()[i]));
                err = Math.max(err, Math.abs(ref.data()[i] - got[i]));
            }
            double relative = err / maxRef;
            System.out.printf("gguf logits: %s %s: max |error| / max |logit| = %.5f%n", backend, file.getFileName(), relative);
            assertTrue(maxRef > 1, "reference logits are not degenerate");
            assertTrue(relative <= QUANTIZED_BOUND, file + ": relative logit error " + relative + " > " + QUANTIZED_BOUND);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void q8_0GgufMatchesTransformersOnItsDequantizedWeights(String backend) {
        assertCloseToDequantizedReference(TINY_Q8_0, backend);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void q4_0GgufMatchesTransformersOnItsDequantizedWeights(String backend) {
        assertCloseToDequantizedReference(TINY_Q4_0, backend);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void q4_k_mGgufMatchesTransformersOnItsDequantizedWeights(String backend) {
        assertCloseToDequantizedReference(K256_Q4_K_M, backend);
    }

    @Test
    void theQ4_K_MFixtureReallyHoldsQ4_KAndQ6_KMatrices() {
        try (AyaForward model = AyaForward.load(K256_Q4_K_M, Backend.open("java"), 1)) {
            assertEquals(WeightType.Q4_K, model.tensors().get("model.layers.0.self_attn.q_proj.weight").weightType());
            assertEquals(WeightType.Q6_K, model.tensors().get("model.embed_tokens.weight").weightType());
            assertEquals(256, model.config().hiddenSize());
        }
    }

    /**
     * The java backend packs the fixture's Q6_K matrices (the tied head, some attn_v and ffn_down) in 16-bit lanes
     * (PackedQ6K: 6-bit values, int8 sub-block scales, an f32 d, 212 bytes per 256 weights; at 8 float lanes
     * PackedQ6KInt8: a byte per value, 276 bytes per 256; rows padded to whole groups of blocks) and its Q4_K ones as PackedNibbles, and decodes through them: one token at a time (the packed
     * decode kernel, not the prefill GEMM) it still gives transformers' logits on the dequantized weights, and the
     * bytes a decode step reads, which aya bench's bandwidth bound uses, count the packed copies instead of the file's.
     */
    @Test
    void theJavaBackendDecodesQ6_KAndQ4_KMatricesThroughItsPackedCopies() {
        int[] ids = inputIds();
        Npy.Matrix ref = Npy.read(Path.of(K256_Q4_K_M + ".logits.npy"));
        try (AyaForward model = AyaForward.load(K256_Q4_K_M, Backend.open("java"), 2)) {
            var c = model.config();
            List<String> products = new java.util.ArrayList<>();
            for (int i = 0; i < c.numLayers(); i++) {
                for (String m : List.of("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")) {
                    products.add("model.layers." + i + "." + m + ".weight");
                }
            }
            products.add("model.embed_tokens.weight"); // the tied head
            long packed = 0, decode = 0;
            int q6k = 0;
            // the java backend's 4-bit layout (PackedNibbles) takes a row's blocks of 32 a vector of shorts at a time
            int group = jdk.incubator.vector.ShortVector.SPECIES_PREFERRED.length();
            for (String name : products) {
                var t = model.tensors().get(name);
                WeightType type = t.weightType();
                if (type == WeightType.Q6_K || type == WeightType.Q4_K || type == WeightType.Q4_0) {
                    q6k += type == WeightType.Q6_K ? 1 : 0;
                    // the java backend's layouts, each row's blocks of 32 padded to whole groups: per Q6_K block 24
                    // bytes of values (32 at 8 float lanes) and 2 int8 scales, an f32 d per 8 blocks; per 32 4-bit
                    // weights 16 bytes of nibbles and Q4_0's f16 scale, or Q4_K's f32 scale and f32 offset
                    long rows = t.shape()[0], blocks = t.shape()[1] / 32, padded = rows * ((blocks + group - 1) / group * group);
                    int q6Values = jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.length() == 8 ? 32 : 24;
                    long copy = type == WeightType.Q6_K ? padded * (q6Values + 2) + padded / 8 * 4 : padded * (type == WeightType.Q4_K ? 24 : 18);
                    packed += copy;
                    decode += copy;
                } else {
                    decode += t.data().byteSize();
                }
            }
            decode += (c.numLayers() + 1L) * c.hiddenSize() * Float.BYTES + WeightType.Q6_K.rowBytes(c.hiddenSize());
            assertTrue(q6k >= 3, "the head and layers' attn_v / ffn_down are Q6_K: " + q6k);
            assertEquals(packed, model.packedBytes());
            assertEquals(decode, model.decodeWeightBytes());

            int vocab = c.vocabSize();
            float[] got = new float[ids.length * vocab];
            try (AyaForward.State s = model.newState(ids.length)) {
                for (int i = 0; i < ids.length; i++) {
                    int at = i * vocab;
                    model.forwardAll(s, new int[] {ids[i]}, (j, row) -> MemorySegment.copy(row, ValueLayout.JAVA_FLOAT, 0, got, at, vocab));
                }
            }
            double maxRef = 0, err = 0;
            for (int i = 0; i < got.length; i++) {
                maxRef = Math.max(maxRef, Math.abs(ref.data()[i]));
                err = Math.max(err, Math.abs(ref.data()[i] - got[i]));
            }
            // the packed 4- and 6-bit decodes round x to int8 per block of 32 (as native's Q8_0 / finer than its Q8_K)
            System.out.printf("gguf logits, java packed decode: %s: max |error| / max |logit| = %.5f%n", K256_Q4_K_M.getFileName(), err / maxRef);
            assertTrue(maxRef > 1 && err / maxRef <= QUANTIZED_BOUND, "token by token: relative logit error " + err / maxRef);
        }
        for (String backend : backends()) {
            if (backend.equals("java")) continue;
            try (AyaForward model = AyaForward.load(K256_Q4_K_M, Backend.open(backend), 1)) {
                assertEquals(0, model.packedBytes(), backend + " reads the file's Q6_K layout");
            }
        }
    }

    /** Loading a patched copy of the bf16 fixture fails with one line naming the file and {@code expected}. */
    static void assertLoadRefused(Path tmp, Consumer<byte[]> patch, String expected) {
        byte[] f = bytes(TINY_BF16);
        patch.accept(f);
        Path file = write(tmp.resolve("bad.gguf"), f);
        AyaException e = assertThrows(AyaException.class, () -> AyaForward.load(file, Backend.open("java"), 1).close());
        assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
        assertTrue(e.getMessage().contains(expected), e.getMessage());
        assertEquals(-1, e.getMessage().indexOf('\n'));
    }

    @Test
    void refusesATensorOfTheWrongShape(@TempDir Path tmp) {
        // attn_k [64 in, 32 out] stored as [32, 64]: same bytes, so only the model's shape check can catch it
        assertLoadRefused(tmp, f -> {
            int at = tensorInfo(f, "blk.1.attn_k.weight") + 4;
            le(f).putLong(at, 32).putLong(at + 8, 64);
        }, "tensor 'model.layers.1.self_attn.k_proj.weight' has shape [64, 32], expected [32, 64]");
    }

    @Test
    void refusesOtherArchitecturesAndMissingMetadata(@TempDir Path tmp) {
        assertLoadRefused(tmp, f -> patchStringValue(f, "general.architecture", "command"), "architecture 'command', this engine runs only 'cohere2'");
        assertLoadRefused(tmp, f -> {
            int at = afterString(f, "cohere2.block_count") - 1;
            f[at] = 'x'; // the key becomes cohere2.block_counx
        }, "metadata 'cohere2.block_count' is missing");
        assertLoadRefused(tmp, f -> le(f).putInt(afterString(f, "cohere2.rope.dimension_count") + 4, 8), "rope.dimension_count is 8");
    }

    @Test
    void refusesAMissingTensor(@TempDir Path tmp) {
        assertLoadRefused(tmp, f -> f[afterString(f, "blk.2.ffn_up.weight") - 8] = 'X', "missing tensor 'model.layers.2.mlp.up_proj.weight'");
    }

    @Test
    void refusesQuantizingAGguf() {
        AyaException e = assertThrows(AyaException.class, () -> AyaForward.load(TINY_BF16, Backend.open("java"), 1, WeightType.Q8_0));
        assertTrue(e.getMessage().contains("a GGUF file runs in the types it holds"), e.getMessage());
    }

    @Test
    void theConvertersFileGetsLlamaCppsScheduleOfThreeSlidingLayersThenAGlobalOne() {
        try (AyaForward m = AyaForward.load(TINY_BF16, Backend.open("java"), 1)) {
            assertArrayEquals(new boolean[] {true, true, true, false}, m.config().slidingLayers());
        }
    }
}
