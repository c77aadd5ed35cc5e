package aya.model;

import aya.kernels.Backend;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The per-operation profile of {@code aya bench --profile}: it times every phase and changes no result. */
class ForwardProfileTest {

    @Test
    void profilingTimesEveryPhaseAndLeavesTheLogitsUnchanged() {
        String fixture = "bf16-untied-sharded";
        int[] ids = ModelFixtures.inputIds(fixture);
        for (String backend : new String[] {"java", "native"}) {
            try (AyaForward model = AyaForward.load(ModelFixtures.dir(fixture), Backend.open(backend), 2);
                 AyaForward.State plain = model.newState(64);
                 AyaForward.State timed = model.newState(64)) {
                ForwardProfile profile = new ForwardProfile();
                float[] want = new float[0], got = new float[0];
                for (int t = 0; t < ids.length; t++) { // token by token: the decode path
                    want = floats(model.forward(plain, new int[] {ids[t]}));
                    model.profile(profile);
                    got = floats(model.forward(timed, new int[] {ids[t]}));
                    model.profile(null);
                    if (backend.equals("native")) {
                        assertArrayEquals(want, got, backend + " logits at position " + t);
                    } else {
                        // the Vector API's lane reductions may sum in another order once C2 compiles them: not a
                        // bit-identical check on the java backend, one within f32 rounding
                        assertArrayEquals(want, got, 1e-5f * maxAbs(want), backend + " logits at position " + t);
                    }
                }
                model.forward(timed, new int[] {ids[0]}); // profiling off again: not counted
                assertEquals(ids.length, profile.passes());
                for (ForwardProfile.Op op : new ForwardProfile.Op[] {ForwardProfile.Op.PROJECTIONS_IN,
                        ForwardProfile.Op.ATTENTION, ForwardProfile.Op.PROJECTIONS_OUT, ForwardProfile.Op.HEAD}) {
                    assertTrue(profile.nanos(op) > 0, backend + " " + op + " was timed");
                }
                String report = profile.report();
                assertTrue(report.startsWith("per-op profile over " + ids.length + " forward passes"), report);
                double percent = 0;
                for (String line : report.lines().skip(1).toList()) {
                    percent += Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1, line.length() - 1));
                }
                assertEquals(100.0, percent, 0.5, report);
                assertEquals(ForwardProfile.Op.values().length + 1, report.lines().count(), report);
            }
        }
    }

    private static float maxAbs(float[] a) {
        float m = 0;
        for (float v : a) m = Math.max(m, Math.abs(v));
        return m;
    }

    private static float[] floats(MemorySegment row) {
        float[] a = row.toArray(ValueLayout.JAVA_FLOAT);
        return Arrays.copyOf(a, a.length);
    }
}
