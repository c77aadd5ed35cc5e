package aya.bench;

import aya.AyaException;
import aya.kernels.Parallel;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class BenchRunnerTest {

    @Test
    void statsAreMeanAndSampleStandardDeviation() {
        // hand-computed: mean 5, squared deviations sum to 32, sample sd sqrt(32 / 7)
        Stats s = Stats.of(2, 4, 4, 4, 5, 5, 7, 9);
        assertEquals(5.0, s.mean(), 1e-12);
        assertEquals(Math.sqrt(32.0 / 7.0), s.sd(), 1e-12);
        assertEquals(8, s.n());
        assertEquals(0.0, Stats.of(3.5).sd());
        assertEquals(3.5, Stats.of(3.5).mean());
        assertTrue(Double.isNaN(Stats.of().mean()));
    }

    /**
     * A fake model on a fake clock: each prefill token costs prefillNs, each decode step decodeNs + slope * pos,
     * making the weights resident touchNs. Every call is logged (with the backend) in events, shared by the fakes.
     */
    static final class FakeTarget implements BenchTarget {
        final long[] clock;
        final String backend;
        final long prefillNs, decodeNs, decodeNsPerPos;
        final List<Integer> decodePositions = new ArrayList<>();
        final List<Integer> prefillStarts = new ArrayList<>();
        final List<Integer> prefillLengths = new ArrayList<>();
        List<String> events = new ArrayList<>();
        long touchNs;
        boolean closed;

        FakeTarget(long[] clock, String backend, long prefillNs, long decodeNs, long decodeNsPerPos) {
            this.clock = clock;
            this.backend = backend;
            this.prefillNs = prefillNs;
            this.decodeNs = decodeNs;
            this.decodeNsPerPos = decodeNsPerPos;
        }

        public String backend() { return backend; }
        public String quant() { return "bf16"; }
        public String activations() { return "f32"; }
        public String kernels() { return backend + " (fake)"; }
        public long weightBytes() { return 6_000_000_000L; }
        public long bytesReadPerDecodeToken(int pos) { return 5_000_000_000L + 1000L * pos; }
        public int vocabSize() { return 100; }

        public long touchWeights() {
            events.add(backend + " touch");
            clock[0] += touchNs;
            return weightBytes();
        }
        public int maxPositions() { return 4096; }

        final List<Integer> fills = new ArrayList<>();

        public void fillContext(int depth) {
            fills.add(depth);
            events.add(backend + " fill");
            clock[0] += 1_000_000_000_000L; // untimed: must not show in any rate
        }

        public void prefill(int[] tokens, int pos0) {
            for (int t : tokens) assertTrue(t >= 0 && t < 100);
            prefillStarts.add(pos0);
            prefillLengths.add(tokens.length);
            events.add(backend + " prefill");
            clock[0] += prefillNs * tokens.length;
        }

        public void decode(int token, int pos) {
            assertTrue(token >= 0 && token < 100);
            decodePositions.add(pos);
            events.add(backend + " decode");
            clock[0] += decodeNs + decodeNsPerPos * pos;
        }

        public void close() {
            closed = true;
            events.add(backend + " close");
        }
    }

    @Test
    void tokensPerSecondBandwidthBoundAndJsonKeys() throws Exception {
        long[] clock = {0};
        FakeTarget java = new FakeTarget(clock, "java", 10_000_000, 250_000_000, 0);   // 100 t/s, 4 t/s
        FakeTarget nat = new FakeTarget(clock, "native", 5_000_000, 125_000_000, 0);   // 200 t/s, 8 t/s
        java.touchNs = 2_000_000_000L;
        List<Double> probes = new ArrayList<>(List.of(40.0, 50.0, 30.0, 45.0)); // java before / after, native before / after
        BenchRunner.Settings settings = new BenchRunner.Settings("m", 512, 32, 0, 3, 2, 1 << 20, 1);
        List<String> probedAt = new ArrayList<>(); // decode steps each backend had run when the probe ran
        BenchRunner runner = new BenchRunner(settings, () -> clock[0], (pool, bytes, reps) -> {
            probedAt.add(java.decodePositions.size() + "/" + nat.decodePositions.size());
            return probes.removeFirst();
        });
        List<String> notes = new ArrayList<>();
        List<BenchResult> results = runner.run(List.of(
                new BenchRunner.Loader("java", () -> { clock[0] += 1_500_000_000L; return java; }),
                new BenchRunner.Loader("native", () -> nat)), notes::add);
        // each backend's probes bracket its timed part: after its 32 warm-up steps, after its 3 x 32 timed ones
        assertEquals(32, BenchRunner.WARMUP_DECODES);
        assertEquals(List.of("32/0", "128/0", "128/32", "128/128"), probedAt);

        assertEquals(2, results.size());
        BenchResult j = results.get(0), n = results.get(1);
        assertEquals(100.0, j.prefillTokensPerS().mean(), 1e-9);
        assertEquals(0.0, j.prefillTokensPerS().sd(), 1e-9);
        assertEquals(4.0, j.decodeTokensPerS().mean(), 1e-9);
        assertEquals(200.0, n.prefillTokensPerS().mean(), 1e-9);
        assertEquals(8.0, n.decodeTokensPerS().mean(), 1e-9);
        assertEquals(1.5 + 2.0, j.loadS(), 1e-9, "load time includes making the weights resident");
        assertEquals(0.0, n.loadS(), 1e-9);
        assertEquals(50.0, j.readGbPerS(), "best of the probes before and after java's timed part");
        assertEquals(45.0, n.readGbPerS(), "native's own probes");
        // decode bound: 50e9 B/s / (5e9 + 1000 * 16) B per token
        assertEquals(50e9 / (5e9 + 16_000), j.decodeBoundTokensPerS(), 1e-9);
        assertEquals(100 * 4.0 / (50e9 / (5e9 + 16_000)), j.decodePercentOfBound(), 1e-9);
        assertTrue(java.closed && nat.closed);
        // warm-up + 3 reps; decode starts at the depth (0) like llama-bench's tg test
        List<Integer> expected = new ArrayList<>(); // warm-up steps at the tests' own positions, repeated
        for (int g = 0; g < BenchRunner.WARMUP_DECODES; g++) expected.add(g % 32);
        for (int rep = 0; rep < 3; rep++) for (int pos = 0; pos < 32; pos++) expected.add(pos);
        assertEquals(expected, java.decodePositions);
        assertEquals(List.of(0, 0, 0, 0), java.prefillStarts);
        assertEquals(List.of(512, 512, 512, 512), java.prefillLengths, "the warm-up prefill is the test's length");
        assertEquals(List.of(), java.fills, "no depth: nothing to fill");

        JsonNode json = new ObjectMapper().readTree(j.toJson());
        for (String key : List.of("backend", "quant", "activations", "threads", "prompt_tokens", "gen_tokens", "depth",
                "prefill_tokens_per_s", "decode_tokens_per_s", "read_gb_per_s", "load_s", "peak_rss_bytes")) {
            assertTrue(json.has(key), "missing key " + key);
        }
        assertEquals("java", json.get("backend").asText());
        assertEquals("bf16", json.get("quant").asText());
        assertEquals("f32", json.get("activations").asText());
        assertEquals(2, json.get("threads").asInt());
        assertEquals(512, json.get("prompt_tokens").asInt());
        assertEquals(32, json.get("gen_tokens").asInt());
        assertEquals(100.0, json.get("prefill_tokens_per_s").asDouble());
        assertEquals(4.0, json.get("decode_tokens_per_s").asDouble());
        assertEquals(50.0, json.get("read_gb_per_s").asDouble());
        assertFalse(j.toJson().contains("\n"), "one line per result");

        String text = BenchReport.text(results);
        assertTrue(text.contains("pp512"), text);
        assertTrue(text.contains("tg32"), text);
        assertTrue(text.contains("100.00 ± 0.00"), text);
        assertTrue(text.contains("native / java: prefill 2.00x, decode 2.00x"), text);
    }

    @Test
    void backendsRunOneAfterTheOtherEachAlone() {
        long[] clock = {0};
        List<String> events = new ArrayList<>();
        FakeTarget java = new FakeTarget(clock, "java", 1_000_000, 1_000_000, 0);
        FakeTarget nat = new FakeTarget(clock, "native", 1_000_000, 1_000_000, 0);
        java.events = events;
        nat.events = events;
        BenchRunner.Settings settings = new BenchRunner.Settings("m", 8, 16, 4, 3, 2, 1 << 20, 1);
        new BenchRunner(settings, () -> clock[0], (pool, bytes, reps) -> 30.0).run(List.of(
                new BenchRunner.Loader("java", () -> { events.add("java load"); return java; }),
                new BenchRunner.Loader("native", () -> { events.add("native load"); return nat; })), line -> { });
        // java is loaded, made resident, filled, warmed up, measured and closed before native is loaded
        int javaClosed = events.indexOf("java close"), nativeLoaded = events.indexOf("native load");
        assertTrue(javaClosed >= 0 && javaClosed + 1 == nativeLoaded, events.toString());
        assertTrue(events.subList(0, nativeLoaded).stream().allMatch(e -> e.startsWith("java ")), events.toString());
        assertTrue(events.subList(nativeLoaded, events.size()).stream().allMatch(e -> e.startsWith("native ")), events.toString());
        assertEquals(List.of("java load", "java touch", "java fill", "java prefill"), events.subList(0, 4),
                "the weights are resident before anything runs");
        assertEquals("native close", events.getLast());
        // warm-up (1 prefill, 32 decodes) + 3 reps of (1 prefill, 16 decodes), per backend
        assertEquals(3 * 17 + 1 + BenchRunner.WARMUP_DECODES, events.stream().filter(e -> e.startsWith("java ") && (e.endsWith("prefill") || e.endsWith("decode"))).count());
        // the same random prompts for both backends: same seed, drawn the same way
        assertEquals(java.decodePositions, nat.decodePositions);
    }

    @Test
    void depthShiftsPositionsAndSkippedPhasesGiveNull() throws Exception {
        long[] clock = {0};
        FakeTarget t = new FakeTarget(clock, "java", 1_000_000, 1_000_000, 1_000); // decode slows with position
        BenchRunner.Settings settings = new BenchRunner.Settings("m", 0, 4, 2048, 2, 1, 1 << 20, 7);
        List<BenchResult> results = new BenchRunner(settings, () -> clock[0], (pool, bytes, reps) -> 30.0)
                .run(List.of(new BenchRunner.Loader("java", () -> t)), line -> { });
        BenchResult r = results.getFirst();
        // positions 2048..2051: mean step time 1e6 + 1000 * 2049.5 ns
        assertEquals(4 / (4 * 1e6 + 1000.0 * (2048 + 2049 + 2050 + 2051)) * 1e9, r.decodeTokensPerS().mean(), 1e-9);
        List<Integer> expected = new ArrayList<>();
        for (int g = 0; g < BenchRunner.WARMUP_DECODES; g++) expected.add(2048 + g % 4); // warm-up: the tests' positions
        expected.addAll(List.of(2048, 2049, 2050, 2051, 2048, 2049, 2050, 2051));
        assertEquals(expected, t.decodePositions);
        assertEquals(List.of(2048), t.fills, "the context is filled once");
        assertEquals(List.of(1), t.prefillLengths, "no prefill test: a one-token warm-up prefill only");
        JsonNode json = new ObjectMapper().readTree(r.toJson());
        assertTrue(json.get("prefill_tokens_per_s").isNull(), "skipped prefill is null, not NaN");
        assertEquals(2048, json.get("depth").asInt());
        assertTrue(BenchReport.text(results).contains("tg4 @ d2048"));
    }

    @Test
    void refusesRunsLongerThanTheModelsContext() {
        long[] clock = {0};
        FakeTarget t = new FakeTarget(clock, "java", 1, 1, 0);
        BenchRunner.Settings settings = new BenchRunner.Settings("m", 512, 32, 4000, 1, 1, 1 << 20, 7);
        BenchRunner runner = new BenchRunner(settings, () -> clock[0], (pool, bytes, reps) -> 30.0);
        AyaException e = assertThrows(AyaException.class,
                () -> runner.run(List.of(new BenchRunner.Loader("java", () -> t)), line -> { }));
        assertTrue(e.getMessage().contains("4512"), e.getMessage());
        assertTrue(t.closed, "loaded targets are closed on failure");
    }

    @Test
    void bandwidthProbeSumsEveryFloat() {
        try (Arena arena = Arena.ofConfined()) {
            int n = 1000 + 3; // not a multiple of the vector width: the scalar tail counts too
            MemorySegment seg = arena.allocate(4L * n, 64);
            double expected = 0;
            for (int i = 0; i < n; i++) {
                float v = (i % 7) - 3 + 0.5f;
                seg.setAtIndex(ValueLayout.JAVA_FLOAT, i, v);
                expected += v;
            }
            assertEquals(expected, Bandwidth.sum(seg, 0, 4L * n), 1e-3);
            assertEquals(seg.getAtIndex(ValueLayout.JAVA_FLOAT, 5) + seg.getAtIndex(ValueLayout.JAVA_FLOAT, 6),
                    Bandwidth.sum(seg, 20, 28), 1e-6);
        }
        try (Parallel pool = new Parallel(2)) {
            double gbs = Bandwidth.readGbPerSecond(pool, 4 << 20, 1); // a tiny buffer: checks it runs, not speed
            assertTrue(gbs > 0 && Double.isFinite(gbs));
        }
    }
}
