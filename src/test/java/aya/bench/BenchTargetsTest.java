package aya.bench;

import aya.model.AyaForward;
import aya.model.ModelFixtures;
import aya.kernels.Backend;
import aya.weights.GgufFixtures;
import aya.weights.Tensor;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The engine's bench target: touchWeights covers every weight the model reads, and leaves every page resident. */
class BenchTargetsTest {

    @Test
    void touchWeightsMakesEveryWeightPageResident() {
        Path dir = ModelFixtures.dir("bf16-untied-sharded");
        try (BenchTarget target = BenchTargets.load(dir, "java", 1, 16)) {
            assertEquals(target.weightBytes(), target.touchWeights(), "every weight the model reads, once");
        }
        // residency seen from the model's own segments (mincore): all pages of every mapped tensor
        AyaForward model = AyaForward.load(dir, Backend.open("java"), 1, null);
        try (BenchTarget target = new BenchTargets.EngineTarget(model, "java", 16, null, null)) { // closes the model
            target.touchWeights();
            int mapped = 0;
            for (Tensor t : model.tensors().values()) {
                if (!t.data().isMapped()) continue;
                mapped++;
                assertTrue(t.data().isLoaded(), t.name() + " is resident");
            }
            assertTrue(mapped > 0, "the fixture's weights are memory-mapped");
        }
    }

    /**
     * A decode step of the java backend on a Q4_K_M file reads its packed Q6_K and Q4_K copies, not the file's bytes: bench's bytes per token, and so its bandwidth bound, differ from native's (which reads the file's
     * layout) by exactly that.
     */
    @Test
    void bytesPerDecodeTokenCountTheJavaBackendsPackedCopies() {
        // file bytes of the Q6_K and Q4_K matrices, which the java backend packs (each row's blocks of 32 padded to
        // whole groups of a vector of shorts; per Q6_K block 26 bytes and an f32 d per 8 blocks, at 8 float lanes 34
        // bytes (a byte per weight and two int8 scales, PackedQ6KInt8) and the same d; per Q4_K block 24:
        // docs/performance-java.md sections 15, 20 and 45); the native backend packs nothing
        int group = jdk.incubator.vector.ShortVector.SPECIES_PREFERRED.length();
        int q6kBlockBytes = jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.length() == 8 ? 34 : 26;
        long q6k = 0, q4k = 0, packedQ4k = 0, packedQ6k = 0;
        try (AyaForward model = AyaForward.load(GgufFixtures.K256_Q4_K_M, Backend.open("native"), 1)) {
            for (Tensor t : model.tensors().values()) {
                if (t.weightType() == aya.kernels.WeightType.Q6_K) {
                    q6k += t.data().byteSize();
                    long blocks = t.shape()[0] * ((t.shape()[1] / 32 + group - 1) / group * group);
                    packedQ6k += blocks * q6kBlockBytes + blocks / 8 * 4;
                }
                if (t.weightType() == aya.kernels.WeightType.Q4_K) {
                    q4k += t.data().byteSize();
                    packedQ4k += t.shape()[0] * ((t.shape()[1] / 32 + group - 1) / group * group) * 24;
                }
            }
        }
        assertTrue(q6k > 0 && q4k > 0, "the Q4_K_M fixture has both types");
        try (BenchTarget javaTarget = BenchTargets.load(GgufFixtures.K256_Q4_K_M, "java", 1, 16);
             BenchTarget nativeTarget = BenchTargets.load(GgufFixtures.K256_Q4_K_M, "native", 1, 16)) {
            assertEquals(packedQ6k + packedQ4k, javaTarget.packedBytes());
            assertEquals(0, nativeTarget.packedBytes());
            for (int pos : new int[]{0, 7}) {
                assertEquals(nativeTarget.bytesReadPerDecodeToken(pos) - q6k - q4k + packedQ6k + packedQ4k,
                        javaTarget.bytesReadPerDecodeToken(pos));
            }
        }
    }
}
