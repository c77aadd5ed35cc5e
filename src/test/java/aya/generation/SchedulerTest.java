package aya.generation;

import aya.AyaException;
import aya.kernels.Backends;
import aya.sampling.SamplerSettings;
import aya.tokenizer.ChatTemplate;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The continuous-batching scheduler on the tiny chat fixture: requests stepped together give exactly what each gives
 * run alone with {@link Session}; cancel, queue limits, prompt errors, the prompt cache and shutdown.
 */
class SchedulerTest {

    static final int CONTEXT = 128;

    /** Collects what a request hears; fails the test on a second onDone/onError. */
    static class Collector implements Scheduler.Listener {
        final List<Integer> ids = new ArrayList<>();
        final StringBuilder streamed = new StringBuilder();
        final CompletableFuture<Scheduler.Completion> done = new CompletableFuture<>();
        volatile int ends;

        @Override
        public void onToken(int id, String text) {
            if (id >= 0) ids.add(id);
            streamed.append(text);
        }

        @Override
        public void onDone(Scheduler.Completion c) {
            ends++;
            done.complete(c);
        }

        @Override
        public void onError(RuntimeException e) {
            ends++;
            done.completeExceptionally(e);
        }

        Scheduler.Completion await() throws Exception {
            return done.get(60, TimeUnit.SECONDS);
        }
    }

    record Case(int[] prompt, GenerationSettings settings) {
    }

    static GenerationSettings settings(SamplerSettings sampling, int maxTokens, List<String> stops, boolean ignoreEos) {
        return new GenerationSettings(sampling, maxTokens, stops, ignoreEos);
    }

    static final SamplerSettings GREEDY = new SamplerSettings(0, 0, 1, 0, 1, 0, 0);

    static SamplerSettings seeded(long seed) {
        return new SamplerSettings(0.9f, 40, 0.95f, 0.05f, 1.1f, 16, seed);
    }

    /** Eight requests: raw and chat prompts of different lengths, greedy and seeded, with stops, limits and ignore_eos. */
    static List<Case> cases(AyaModel model) {
        ChatTemplate chat = model.chatTemplate().orElseThrow();
        List<int[]> prompts = List.of(
                model.tokenizer().encode("The quick brown fox", true),
                chat.encodeChat(List.of(new ChatTemplate.Message("user", "Hello! How are you today?")), true),
                model.tokenizer().encode("Once upon a time, in a land far away, there lived a", true),
                chat.encodeChat(List.of(new ChatTemplate.Message("system", "Be brief."),
                        new ChatTemplate.Message("user", "Name three colours.")), true),
                model.tokenizer().encode("1234567 + 89 =", true),
                model.tokenizer().encode("Über die Brücke", true),
                chat.encodeChat(List.of(new ChatTemplate.Message("user", "Tell me a story about a cat")), true),
                model.tokenizer().encode("a", true));
        List<Case> cases = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) {
            SamplerSettings sampling = i % 2 == 0 ? GREEDY : seeded(100 + i);
            cases.add(new Case(prompts.get(i), settings(sampling, 6 + 3 * i, List.of(), i % 3 == 0)));
        }
        return cases;
    }

    static GenerationResult alone(AyaModel model, Case c) {
        try (Session s = model.newSession(CONTEXT)) {
            return s.generate(c.prompt(), c.settings(), TokenListener.NONE);
        }
    }

    static List<String> backends() {
        return Backends.available();
    }

    @ParameterizedTest
    @MethodSource("backends")
    void concurrentRequestsGiveWhatEachGivesAlone(String backend) throws Exception {
        try (AyaModel model = AyaModel.load(ChatFixture.DIR, new AyaModel.Options(backend, 2, null))) {
            List<Case> cases = new ArrayList<>(cases(model));
            // a stop string taken from the middle of a request's own text, so it must trigger (and be held back)
            for (int i : new int[] {2, 5}) {
                Case c = cases.get(i);
                String text = alone(model, new Case(c.prompt(), settings(c.settings().sampling(), 30, List.of(), true))).text();
                assertTrue(text.length() > 6, "the fixture generates text for case " + i);
                String stop = text.substring(text.length() / 2, text.length() / 2 + 2);
                cases.set(i, new Case(c.prompt(), settings(c.settings().sampling(), 30, List.of(stop, "\u0000never"), true)));
            }
            List<GenerationResult> alone = new ArrayList<>();
            for (Case c : cases) alone.add(alone(model, c));
            assertEquals(StopReason.STOP_STRING, alone.get(2).stopReason());
            assertEquals(StopReason.STOP_STRING, alone.get(5).stopReason());

            // parallel 4 and prefill chunks of 7: requests queue, join mid-way and prefill across several steps
            Scheduler.Options options = new Scheduler.Options(4, CONTEXT, 8, 0, 7);
            List<Collector> collectors = new ArrayList<>();
            try (Scheduler scheduler = new Scheduler(model, options)) {
                for (Case c : cases) {
                    Collector col = new Collector();
                    collectors.add(col);
                    scheduler.submit(c.prompt(), c.settings(), col);
                }
                for (int i = 0; i < cases.size(); i++) {
                    Scheduler.Completion got = collectors.get(i).await();
                    GenerationResult want = alone.get(i);
                    assertArrayEquals(want.ids(), got.ids(), "request " + i + " ids");
                    assertEquals(want.text(), got.text(), "request " + i + " text");
                    assertEquals(want.stopReason(), got.reason(), "request " + i + " stop reason");
                    assertEquals(want.text(), collectors.get(i).streamed.toString(), "request " + i + " streamed text");
                    assertArrayEquals(want.ids(), collectors.get(i).ids.stream().mapToInt(Integer::intValue).toArray());
                    assertEquals(cases.get(i).prompt().length, got.promptTokens());
                    assertEquals(0, got.cachedPromptTokens());
                }
                Scheduler.Stats stats = scheduler.stats();
                long generated = alone.stream().mapToLong(r -> r.ids().length).sum();
                assertEquals(generated, stats.completionTokens(), "stats count the generated tokens");
                long promptTotal = cases.stream().mapToLong(c -> c.prompt().length).sum();
                assertEquals(promptTotal, stats.promptTokens());
                assertTrue(stats.stepRowsTotal() > stats.steps(), "steps held several rows: " + stats);
                assertEquals(0, stats.active());
            }
            for (Collector c : collectors) assertEquals(1, c.ends, "one onDone per request");
        }
    }

    @Test
    void cancelMidGenerationFreesTheSlotAndOthersContinue() throws Exception {
        try (AyaModel model = AyaModel.load(ChatFixture.DIR, new AyaModel.Options("java", 1, null));
             Scheduler scheduler = new Scheduler(model, new Scheduler.Options(1, CONTEXT, 4, 0, 16))) {
            AtomicReference<Scheduler.Request> first = new AtomicReference<>();
            CountDownLatch submitted = new CountDownLatch(1);
            Collector cancelled = new Collector() {
                @Override
                public void onToken(int id, String text) {
                    super.onToken(id, text);
                    if (ids.size() == 3) {
                        try {
                            submitted.await();
                        } catch (InterruptedException e) {
                            throw new RuntimeException(e);
                        }
                        first.get().cancel();
                    }
                }
            };
            Case other = new Case(model.tokenizer().encode("The quick brown fox", true), settings(GREEDY, 10, List.of(), true));
            first.set(scheduler.submit(model.tokenizer().encode("Once upon a time", true), settings(GREEDY, 100, List.of(), true), cancelled));
            Collector next = new Collector();
            Scheduler.Request second = scheduler.submit(other.prompt(), other.settings(), next); // waits: one slot
            submitted.countDown();
            Scheduler.Completion c = cancelled.await();
            assertEquals(StopReason.CANCELLED, c.reason());
            assertEquals(3, c.ids().length, "left at the next step");
            assertTrue(first.get().done());
            Scheduler.Completion n = next.await();
            assertArrayEquals(alone(model, other).ids(), n.ids(), "the freed slot served the waiting request");
            assertTrue(second.done());
            assertEquals(0, scheduler.stats().active());
        }
    }

    @Test
    void aFullQueueAndBadPromptsAreRefusedAtSubmit() throws Exception {
        try (AyaModel model = AyaModel.load(ChatFixture.DIR, new AyaModel.Options("java", 1, null));
             Scheduler scheduler = new Scheduler(model, new Scheduler.Options(1, 16, 1, 0, 8))) {
            CountDownLatch release = new CountDownLatch(1);
            Collector blocking = new Collector() {
                @Override
                public void onToken(int id, String text) {
                    try {
                        release.await(); // holds the scheduler thread so the slot stays busy
                    } catch (InterruptedException e) {
                        throw new RuntimeException(e);
                    }
                }
            };
            GenerationSettings four = settings(GREEDY, 4, List.of(), true);
            Scheduler.Request a = scheduler.submit(new int[] {2, 10}, four, blocking);
            Scheduler.Request b = scheduler.submit(new int[] {2, 11}, four, new Collector());
            QueueFullException full = assertThrows(QueueFullException.class,
                    () -> scheduler.submit(new int[] {2, 12}, four, new Collector()));
            assertTrue(full.getMessage().contains("queue capacity 1"), full.getMessage());
            assertInstanceOf(AyaException.class, full);
            AyaException tooLong = assertThrows(AyaException.class, () -> scheduler.submit(new int[16], four, new Collector()));
            assertTrue(tooLong.getMessage().contains("context of 16"), tooLong.getMessage());
            assertFalse(tooLong instanceof QueueFullException);
            // 15 + 1 fits the context: refused only because the queue is full
            assertThrows(QueueFullException.class, () -> scheduler.submit(new int[15], four, new Collector()));
            assertThrows(AyaException.class, () -> scheduler.submit(new int[0], four, new Collector()));
            assertThrows(AyaException.class, () -> scheduler.submit(new int[] {2, 1 << 20}, four, new Collector()));
            release.countDown();
            a.cancel();
            b.cancel();
        }
    }

    @Test
    void aSecondChatTurnReusesTheFirstTurnsKvCache() throws Exception {
        try (AyaModel model = AyaModel.load(ChatFixture.DIR, new AyaModel.Options("java", 2, null))) {
            ChatTemplate chat = model.chatTemplate().orElseThrow();
            List<ChatTemplate.Message> turn1 = List.of(new ChatTemplate.Message("user", "Hello there, what is your name?"));
            GenerationSettings settings = settings(GREEDY, 8, List.of(), false);
            long budget = 4 * model.forward().batchStateBytes(CONTEXT, 16);
            try (Scheduler cached = new Scheduler(model, new Scheduler.Options(2, CONTEXT, 4, budget, 16))) {
                Collector first = new Collector();
                cached.submit(chat.encodeChat(turn1, true), settings, first);
                Scheduler.Completion reply = first.await();
                assertEquals(0, reply.cachedPromptTokens());
                List<ChatTemplate.Message> turn2 = new ArrayList<>(turn1);
                turn2.add(new ChatTemplate.Message("assistant", reply.text()));
                turn2.add(new ChatTemplate.Message("user", "And what can you do?"));
                int[] prompt2 = chat.encodeChat(turn2, true);
                Collector second = new Collector();
                cached.submit(prompt2, settings, second);
                Scheduler.Completion got = second.await();
                int common = PromptCache.commonPrefix(chat.encodeChat(turn1, true), prompt2, prompt2.length - 1);
                assertTrue(common > 10, "the turns share the first turn's tokens: " + common);
                assertTrue(got.cachedPromptTokens() >= common, "reused " + got.cachedPromptTokens() + " of " + prompt2.length);
                assertEquals(1, cached.stats().cacheHits());
                assertEquals(got.cachedPromptTokens(), cached.stats().cachedTokensReused());
                assertEquals(reply.promptTokens() + prompt2.length - got.cachedPromptTokens(), cached.stats().promptTokens(),
                        "only the new turn was prefilled");
                GenerationResult fresh = alone(model, new Case(prompt2, settings));
                assertArrayEquals(fresh.ids(), got.ids(), "the same reply as without a cache");
                assertEquals(fresh.text(), got.text());
            }
        }
    }

    @Test
    void thePromptCacheEvictsTheLeastRecentlyUsedStateWithinItsBudget() throws Exception {
        try (AyaModel model = AyaModel.load(ChatFixture.DIR, new AyaModel.Options("java", 1, null))) {
            long oneState = model.forward().batchStateBytes(CONTEXT, 8);
            GenerationSettings settings = settings(GREEDY, 2, List.of(), true);
            int[] a = {20, 21, 22, 23, 24, 25}, b = {30, 31, 32, 33, 34, 35}, c = {40, 41, 42, 43, 44, 45};
            try (Scheduler scheduler = new Scheduler(model, new Scheduler.Options(1, CONTEXT, 4, 2 * oneState + 100, 8))) {
                for (int[] prompt : List.of(a, b, c)) { // one by one: a, b cached; c evicts a
                    Collector col = new Collector();
                    scheduler.submit(prompt, settings, col);
                    assertEquals(0, col.await().cachedPromptTokens());
                }
                Collector again = new Collector();
                scheduler.submit(b, settings, again);
                assertEquals(b.length - 1, again.await().cachedPromptTokens(), "b was still cached");
                Collector evicted = new Collector();
                scheduler.submit(a, settings, evicted);
                assertEquals(0, evicted.await().cachedPromptTokens(), "a was evicted (least recently used)");
                assertEquals(1, scheduler.stats().cacheHits());
            }
            AyaException tooSmall = assertThrows(AyaException.class,
                    () -> new Scheduler(model, new Scheduler.Options(1, CONTEXT, 4, oneState / 2, 8)));
            assertTrue(tooSmall.getMessage().contains("--cache-ram"), tooSmall.getMessage());
            AyaException huge = assertThrows(AyaException.class,
                    () -> new Scheduler(model, new Scheduler.Options(1, CONTEXT, 4, Long.MAX_VALUE / 2, 8)));
            assertTrue(huge.getMessage().contains("available"), huge.getMessage());
        }
    }

    @Test
    void shutdownLetsInFlightRequestsFinishThenRefusesNewOnes() throws Exception {
        try (AyaModel model = AyaModel.load(ChatFixture.DIR, new AyaModel.Options("java", 1, null))) {
            Scheduler scheduler = new Scheduler(model, new Scheduler.Options(2, CONTEXT, 4, 0, 8));
            GenerationSettings ten = settings(GREEDY, 10, List.of(), true);
            List<Collector> cols = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                Collector col = new Collector();
                cols.add(col);
                scheduler.submit(new int[] {2, 50 + i, 60 + i}, ten, col);
            }
            scheduler.shutdown(60_000);
            for (Collector col : cols) {
                assertTrue(col.done.isDone(), "shutdown returns after every request ended");
                assertEquals(StopReason.MAX_TOKENS, col.await().reason());
                assertEquals(10, col.await().ids().length);
            }
            AyaException refused = assertThrows(AyaException.class, () -> scheduler.submit(new int[] {2, 5}, ten, new Collector()));
            assertTrue(refused.getMessage().contains("shutting down"), refused.getMessage());
        }
    }

    @Test
    void shutdownWithoutGraceCancelsInFlightRequests() throws Exception {
        try (AyaModel model = AyaModel.load(ChatFixture.DIR, new AyaModel.Options("java", 1, null))) {
            Scheduler scheduler = new Scheduler(model, new Scheduler.Options(1, CONTEXT, 4, 0, 8));
            CountDownLatch started = new CountDownLatch(1);
            Collector running = new Collector() {
                @Override
                public void onToken(int id, String text) {
                    super.onToken(id, text);
                    started.countDown();
                }
            };
            GenerationSettings hundred = settings(GREEDY, 100, List.of(), true);
            scheduler.submit(new int[] {2, 50, 60}, hundred, running);
            Collector waiting = new Collector();
            scheduler.submit(new int[] {2, 51, 61}, hundred, waiting);
            assertTrue(started.await(60, TimeUnit.SECONDS));
            scheduler.close();
            assertEquals(StopReason.CANCELLED, running.await().reason());
            assertTrue(running.await().ids().length < 100);
            assertEquals(StopReason.CANCELLED, waiting.await().reason());
            assertEquals(0, waiting.await().ids().length);
            assertEquals(1, running.ends);
        }
    }

    @Test
    void aListenerThatThrowsFailsOnlyItsOwnRequest() throws Exception {
        try (AyaModel model = AyaModel.load(ChatFixture.DIR, new AyaModel.Options("java", 1, null));
             Scheduler scheduler = new Scheduler(model, new Scheduler.Options(2, CONTEXT, 4, 0, 8))) {
            Collector broken = new Collector() {
                @Override
                public void onToken(int id, String text) {
                    throw new IllegalStateException("client went away");
                }
            };
            Case ok = new Case(new int[] {2, 70, 71, 72}, settings(GREEDY, 6, List.of(), true));
            scheduler.submit(new int[] {2, 80}, ok.settings(), broken);
            Collector fine = new Collector();
            scheduler.submit(ok.prompt(), ok.settings(), fine);
            var e = assertThrows(java.util.concurrent.ExecutionException.class, broken::await);
            assertEquals("client went away", e.getCause().getMessage());
            assertArrayEquals(alone(model, ok).ids(), fine.await().ids());
            assertEquals(1, broken.ends);
        }
    }
}
