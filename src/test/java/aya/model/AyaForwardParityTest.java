package aya.model;

import aya.AyaException;
import aya.kernels.Backend;
import aya.kernels.Backends;
import aya.weights.Npy;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Logits and greedy tokens against Hugging Face transformers (eager attention, f32) on the random tiny checkpoints.
 * Every mode must match the full-sequence HF logits to 1e-4 of max |logit|: one prefill, token-by-token decode,
 * chunked prefill (the small chunks make the sliding layers' ring buffers wrap), and several thread counts.
 */
class AyaForwardParityTest {

    static final double TOLERANCE = 1e-4;

    /** feed: tokens per forward call (0 = all at once); block: the state's max block (0 = default). */
    record Mode(String name, int feed, int block, int threads) {
        @Override
        public String toString() {
            return name;
        }
    }

    static final List<Mode> MODES = List.of(
            new Mode("prefill", 0, 0, 2),
            new Mode("prefill-1thread", 0, 0, 1),
            new Mode("prefill-in-blocks-of-5", 0, 5, 3),
            new Mode("decode", 1, 1, 2),
            new Mode("chunk-3", 3, 3, 2),
            new Mode("chunk-7", 7, 7, 2),
            new Mode("chunk-7-block-4", 7, 4, 2));

    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        for (String backend : Backends.available())
            for (String fixture : ModelFixtures.NAMES)
                for (Mode mode : MODES)
                    out.add(Arguments.of(backend, fixture, mode));
        return out.stream();
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("cases")
    void logitsMatchTransformers(String backend, String fixture, Mode mode) {
        int[] ids = ModelFixtures.inputIds(fixture);
        Npy.Matrix ref = Npy.read(ModelFixtures.dir(fixture).resolve("logits.npy"));
        assertEquals(ids.length, ref.rows());
        try (AyaForward model = AyaForward.load(ModelFixtures.dir(fixture), Backend.open(backend), mode.threads())) {
            int vocab = model.config().vocabSize();
            assertEquals(ref.cols(), vocab);
            float[] got = new float[ids.length * vocab];
            int block = mode.block() == 0 ? AyaForward.DEFAULT_MAX_BLOCK : mode.block();
            try (AyaForward.State state = model.newState(ids.length, block)) {
                int step = mode.feed() == 0 ? ids.length : mode.feed();
                int[] seen = {0};
                for (int start = 0; start < ids.length; start += step) {
                    int[] piece = Arrays.copyOfRange(ids, start, Math.min(ids.length, start + step));
                    int base = start;
                    model.forwardAll(state, piece, (i, row) -> {
                        assertEquals(seen[0], base + i, "logits arrive in order");
                        MemorySegment.copy(row, ValueLayout.JAVA_FLOAT, 0, got, (base + i) * vocab, vocab);
                        seen[0]++;
                    });
                }
                assertEquals(ids.length, seen[0]);
                assertEquals(ids.length, state.position());
            }
            assertClose(ref, got, fixture + " " + mode);
        }
    }

    static void assertClose(Npy.Matrix ref, float[] got, String what) {
        double maxRef = 0, maxErr = 0;
        int worst = 0;
        for (int i = 0; i < got.length; i++) {
            maxRef = Math.max(maxRef, Math.abs(ref.data()[i]));
            double err = Math.abs(ref.data()[i] - got[i]);
            if (!(err <= maxErr)) { // NaN-safe: a NaN error becomes the worst
                maxErr = Double.isNaN(err) ? Double.POSITIVE_INFINITY : err;
                worst = i;
            }
        }
        assertTrue(maxRef > 1, "reference logits are not degenerate");
        assertTrue(maxErr <= TOLERANCE * maxRef, what + ": max abs error " + maxErr + " at position " + worst / ref.cols()
                + " id " + worst % ref.cols() + " exceeds " + TOLERANCE + " x max|logit| " + maxRef);
    }

    static Stream<Arguments> greedyCases() {
        List<Arguments> out = new ArrayList<>();
        for (String backend : Backends.available())
            for (String fixture : ModelFixtures.NAMES)
                out.add(Arguments.of(backend, fixture));
        return out.stream();
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("greedyCases")
    void greedyContinuationMatchesTransformersGenerate(String backend, String fixture) {
        JsonNode g = ModelFixtures.greedy(fixture);
        int[] prompt = ModelFixtures.ints(g.get("prompt"));
        int[] expected = ModelFixtures.ints(g.get("ids"));
        int max = g.get("max_new_tokens").asInt();
        int eos = g.get("eos").asInt();
        try (AyaForward model = AyaForward.load(ModelFixtures.dir(fixture), Backend.open(backend), 2);
             AyaForward.State state = model.newState(prompt.length + max, 4)) {
            List<Integer> got = new ArrayList<>();
            MemorySegment logits = model.forward(state, prompt);
            while (got.size() < max) {
                int next = argmax(logits, model.config().vocabSize());
                got.add(next);
                if (next == eos) break; // transformers stops after emitting eos
                logits = model.forward(state, new int[] {next});
            }
            assertArrayEquals(expected, got.stream().mapToInt(Integer::intValue).toArray());
        }
    }

    static int argmax(MemorySegment logits, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) {
            if (logits.getAtIndex(ValueLayout.JAVA_FLOAT, i) > logits.getAtIndex(ValueLayout.JAVA_FLOAT, best)) best = i;
        }
        return best;
    }

    @Test
    void lastLogitsOnlyEqualTheLastRowOfAllLogits() {
        String fixture = "bf16-untied-sharded";
        int[] ids = ModelFixtures.inputIds(fixture);
        Npy.Matrix ref = Npy.read(ModelFixtures.dir(fixture).resolve("logits.npy"));
        try (AyaForward model = AyaForward.load(ModelFixtures.dir(fixture), Backend.open("java"), 2);
             AyaForward.State state = model.newState(ids.length)) {
            MemorySegment last = model.forward(state, ids);
            int v = model.config().vocabSize();
            assertEquals((long) v * Float.BYTES, last.byteSize());
            float[] got = new float[ids.length * v];
            Arrays.fill(got, 0);
            MemorySegment.copy(last, ValueLayout.JAVA_FLOAT, 0, got, (ids.length - 1) * v, v);
            for (int c = 0; c < v; c++) {
                assertEquals(ref.get(ids.length - 1, c), got[(ids.length - 1) * v + c], 1e-4 * 7, "id " + c);
            }
        }
    }

    /** One loaded model serves several sessions: interleaved and concurrent sessions each get their own HF logits. */
    @Test
    void sessionsShareOneModel() throws Exception {
        String fixture = "bf16-untied-sharded";
        int[] ids = ModelFixtures.inputIds(fixture);
        Npy.Matrix ref = Npy.read(ModelFixtures.dir(fixture).resolve("logits.npy"));
        int v = ref.cols();
        try (AyaForward model = AyaForward.load(ModelFixtures.dir(fixture), Backend.open("java"), 2)) {
            // interleaved on one thread: a prefill in one session between decode steps of another
            try (AyaForward.State a = model.newState(ids.length, 1); AyaForward.State b = model.newState(ids.length)) {
                for (int t = 0; t < ids.length; t++) {
                    MemorySegment row = model.forward(a, new int[] {ids[t]});
                    for (int c = 0; c < v; c++) {
                        assertEquals(ref.get(t, c), row.getAtIndex(ValueLayout.JAVA_FLOAT, c), 1e-3, "session a, position " + t);
                    }
                    if (t == ids.length / 2) {
                        MemorySegment last = model.forward(b, ids);
                        assertEquals(ref.get(ids.length - 1, 7), last.getAtIndex(ValueLayout.JAVA_FLOAT, 7), 1e-3);
                    }
                }
            }
            // concurrent: three threads, each its own session and feed size
            var errors = new java.util.concurrent.ConcurrentLinkedQueue<Throwable>();
            Thread[] threads = new Thread[3];
            for (int i = 0; i < threads.length; i++) {
                int chunk = 2 + 3 * i;
                threads[i] = new Thread(() -> {
                    try (AyaForward.State s = model.newState(ids.length, chunk)) {
                        for (int start = 0; start < ids.length; start += chunk) {
                            int[] piece = Arrays.copyOfRange(ids, start, Math.min(ids.length, start + chunk));
                            int base = start;
                            model.forwardAll(s, piece, (j, row) -> {
                                for (int c = 0; c < v; c++) {
                                    float want = ref.get(base + j, c), got = row.getAtIndex(ValueLayout.JAVA_FLOAT, c);
                                    if (Math.abs(want - got) > 1e-3) {
                                        throw new AssertionError("chunk " + chunk + " position " + (base + j) + ": " + got + " vs " + want);
                                    }
                                }
                            });
                        }
                    } catch (Throwable e) {
                        errors.add(e);
                    }
                });
                threads[i].start();
            }
            for (Thread t : threads) t.join();
            assertTrue(errors.isEmpty(), errors.toString());
        }
    }

    @Test
    void rewindAndResetReplayTheSameLogits() {
        String fixture = "f32-tied"; // window 8
        int[] ids = ModelFixtures.inputIds(fixture);
        Npy.Matrix ref = Npy.read(ModelFixtures.dir(fixture).resolve("logits.npy"));
        int v = ref.cols();
        try (AyaForward model = AyaForward.load(ModelFixtures.dir(fixture), Backend.open("java"), 2);
             AyaForward.State state = model.newState(ids.length, 4)) { // sliding ring: 8 + 4 - 1 = 11 slots
            model.forward(state, Arrays.copyOf(ids, 30));
            state.rewind(27); // 3 back: within the ring's slack (11 - 8 + 1 = 4)
            MemorySegment row = model.forward(state, Arrays.copyOfRange(ids, 27, 28));
            for (int c = 0; c < v; c++) {
                assertEquals(ref.get(27, c), row.getAtIndex(ValueLayout.JAVA_FLOAT, c), 1e-3, "after rewind, id " + c);
            }
            assertThrows(IllegalArgumentException.class, () -> state.rewind(10), "rewinding past the ring is refused");
            state.reset();
            row = model.forward(state, Arrays.copyOf(ids, 5));
            for (int c = 0; c < v; c++) {
                assertEquals(ref.get(4, c), row.getAtIndex(ValueLayout.JAVA_FLOAT, c), 1e-3, "after reset, id " + c);
            }
        }
    }

    @Test
    void tooManyTokensOrBadIdsFailBeforeAnyWork() {
        String fixture = "f32-tied";
        try (AyaForward model = AyaForward.load(ModelFixtures.dir(fixture), Backend.open("java"), 1);
             AyaForward.State state = model.newState(10)) {
            AyaException e = assertThrows(AyaException.class, () -> model.forward(state, new int[11]));
            assertTrue(e.getMessage().contains("context of 10"), e.getMessage());
            assertEquals(0, state.position());
            e = assertThrows(AyaException.class, () -> model.forward(state, new int[] {1, 320}));
            assertTrue(e.getMessage().contains("320") && e.getMessage().contains("vocab_size"), e.getMessage());
            e = assertThrows(AyaException.class, () -> model.forward(state, new int[] {-1}));
            assertTrue(e.getMessage().contains("-1"), e.getMessage());
            assertEquals(0, state.position());
            model.forward(state, new int[] {5, 6, 7});
            e = assertThrows(AyaException.class, () -> model.forward(state, new int[8]));
            assertTrue(e.getMessage().contains("already in the cache"), e.getMessage());
            assertEquals(3, state.position());
        }
    }

    @Test
    void aContextBeyondTheMachinesMemoryIsRefusedBeforeAllocating(@TempDir Path tmp) throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("m"));
        for (String f : new String[] {"config.json", "generation_config.json", "model.safetensors"}) {
            Files.copy(ModelFixtures.dir("f32-tied").resolve(f), dir.resolve(f));
        }
        Path cfg = dir.resolve("config.json");
        Files.writeString(cfg, Files.readString(cfg).replace("\"max_position_embeddings\": 128", "\"max_position_embeddings\": 2147483647"));
        try (AyaForward model = AyaForward.load(dir, Backend.open("java"), 1)) {
            AyaException e = assertThrows(AyaException.class, () -> model.newState(Integer.MAX_VALUE));
            assertTrue(e.getMessage().contains("--context"), e.getMessage());
        }
    }

    @Test
    void contextIsCappedByMaxPositionEmbeddingsAndSlidingRingsDoNotGrow() {
        try (AyaForward model = AyaForward.load(ModelFixtures.dir("f32-tied"), Backend.open("java"), 1)) {
            assertEquals(128, model.config().maxPositionEmbeddings());
            try (AyaForward.State big = model.newState(1_000_000, 16); AyaForward.State small = model.newState(64, 16)) {
                assertEquals(128, big.context());
                // 3 sliding layers of (8 + 16 - 1) slots and 1 global layer of context slots, K and V, kvDim 36 f32
                long kvRow = 2L * 36 * 4;
                assertEquals((3 * 23 + 128) * kvRow, big.kvCacheBytes());
                assertEquals((3 * 23 + 64) * kvRow, small.kvCacheBytes());
            }
            assertEquals(2L * 36 * 4, model.kvBytesPerToken());
        }
    }

    /**
     * transformers ties the head only when the checkpoint has no lm_head.weight; a checkpoint that holds one (with
     * tie_word_embeddings true) uses it. Here lm_head = 2 x embed_tokens, so the logits must be twice HF's tied ones.
     */
    @Test
    void anLmHeadInTheCheckpointWinsOverTying(@TempDir Path tmp) throws Exception {
        String fixture = "f32-tied";
        Path dir = tmp.resolve("m");
        Files.createDirectories(dir);
        for (String f : new String[] {"config.json", "generation_config.json"}) {
            Files.copy(ModelFixtures.dir(fixture).resolve(f), dir.resolve(f));
        }
        byte[] all = Files.readAllBytes(ModelFixtures.dir(fixture).resolve("model.safetensors"));
        ByteBuffer b = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN);
        int n = (int) b.getLong(0);
        var mapper = new ObjectMapper();
        var header = (ObjectNode) mapper.readTree(new String(all, 8, n, StandardCharsets.UTF_8));
        var embed = header.get("model.embed_tokens.weight");
        long begin = embed.get("data_offsets").get(0).asLong(), end = embed.get("data_offsets").get(1).asLong();
        long dataLen = all.length - 8 - n;
        var head = header.putObject("lm_head.weight");
        head.put("dtype", "F32");
        head.set("shape", embed.get("shape"));
        head.putArray("data_offsets").add(dataLen).add(dataLen + (end - begin));
        byte[] h = mapper.writeValueAsBytes(header);
        ByteBuffer outBuf = ByteBuffer.allocate(8 + h.length + (int) dataLen + (int) (end - begin)).order(ByteOrder.LITTLE_ENDIAN);
        outBuf.putLong(h.length).put(h).put(all, 8 + n, (int) dataLen);
        for (long i = begin; i < end; i += 4) {
            outBuf.putFloat(2 * b.getFloat((int) (8 + n + i)));
        }
        Files.write(dir.resolve("model.safetensors"), outBuf.array());

        int[] ids = ModelFixtures.inputIds(fixture);
        Npy.Matrix ref = Npy.read(ModelFixtures.dir(fixture).resolve("logits.npy"));
        try (AyaForward model = AyaForward.load(dir, Backend.open("java"), 2);
             AyaForward.State state = model.newState(ids.length)) {
            assertFalse(model.headTied());
            float[] got = new float[ids.length * ref.cols()];
            model.forwardAll(state, ids, (i, row) -> MemorySegment.copy(row, ValueLayout.JAVA_FLOAT, 0, got, i * ref.cols(), ref.cols()));
            float[] doubled = ref.data().clone();
            for (int i = 0; i < doubled.length; i++) doubled[i] *= 2;
            assertClose(new Npy.Matrix(ref.rows(), ref.cols(), doubled), got, "lm_head = 2 x embed");
        }
    }
}
