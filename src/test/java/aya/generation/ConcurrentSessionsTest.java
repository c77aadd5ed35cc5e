package aya.generation;

import aya.kernels.Backends;
import aya.sampling.SamplerSettings;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.*;

/**
 * One loaded model, several sessions generating at once from different threads (weights and thread pool shared,
 * KV cache per session): each result must equal the same generation run alone, one after another.
 */
class ConcurrentSessionsTest {

    record Job(int[] prompt, GenerationSettings settings) {
    }

    static List<Job> jobs(AyaModel model) {
        int vocab = Math.min(model.config().vocabSize(), 200);
        List<Job> jobs = new ArrayList<>();
        for (int j = 0; j < 4; j++) {
            int[] prompt = new int[5 + 3 * j];
            prompt[0] = 2;
            for (int i = 1; i < prompt.length; i++) prompt[i] = 8 + (i * 31 + j * 17) % (vocab - 8);
            // half greedy, half seeded sampling (the same seed must give the same tokens in any interleaving)
            SamplerSettings sampling = j % 2 == 0 ? new SamplerSettings(0, 0, 1, 0, 1, 0, 0)
                    : new SamplerSettings(1.0f, 0, 1, 0, 1.1f, 16, 1000 + j);
            jobs.add(new Job(prompt, new GenerationSettings(sampling, 12, List.of(), true)));
        }
        return jobs;
    }

    static int[] runAlone(AyaModel model, Job job) {
        try (Session s = model.newSession(64)) {
            return s.generate(job.prompt(), job.settings(), TokenListener.NONE).ids();
        }
    }

    void check(Path dir, String backend, int poolThreads) throws Exception {
        try (AyaModel model = AyaModel.load(dir, new AyaModel.Options(backend, poolThreads, null))) {
            List<Job> jobs = jobs(model);
            List<int[]> alone = new ArrayList<>();
            for (Job job : jobs) alone.add(runAlone(model, job));

            ExecutorService callers = Executors.newFixedThreadPool(jobs.size());
            try {
                CountDownLatch start = new CountDownLatch(1);
                List<Future<int[]>> results = new ArrayList<>();
                for (Job job : jobs) {
                    results.add(callers.submit(() -> {
                        start.await();
                        return runAlone(model, job);
                    }));
                }
                start.countDown();
                for (int j = 0; j < jobs.size(); j++) {
                    assertArrayEquals(alone.get(j), results.get(j).get(), dir + " job " + j);
                    assertEquals(12, alone.get(j).length);
                }
            } finally {
                callers.shutdownNow();
            }
        }
    }

    static List<String> backends() {
        return Backends.available();
    }

    @ParameterizedTest
    @MethodSource("backends")
    void concurrentSessionsMatchSequentialRuns(String backend) throws Exception {
        check(ChatFixture.DIR, backend, 2); // two pool threads: the sessions take turns on the shared pool
        if (backend.equals("java")) {
            check(Path.of("src/test/resources/model/f32-tied"), backend, 1);
            check(Path.of("src/test/resources/model/bf16-untied-sharded"), backend, 1);
        }
    }

    @Test
    void aClosedSessionCannotBeUsed() {
        try (AyaModel model = AyaModel.load(ChatFixture.DIR, new AyaModel.Options("java", 1, null))) {
            Session s = model.newSession(32);
            s.close();
            assertThrows(IllegalStateException.class,
                    () -> s.generate(new int[] {2, 10}, GenerationSettings.greedy(2), TokenListener.NONE));
        }
    }
}
