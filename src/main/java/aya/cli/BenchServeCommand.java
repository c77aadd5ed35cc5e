package aya.cli;

import aya.AyaException;
import aya.generation.AyaModel;
import aya.generation.Scheduler;
import aya.server.ApiServer;
import aya.server.ServeBench;
import com.fasterxml.jackson.databind.ObjectMapper;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.net.URI;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code aya bench-serve}: drives a server through HTTP with 1, 2, 4, 8... concurrent streaming clients and reports
 * aggregate tokens/s, per-stream tokens/s and time to first token. Starts {@code aya serve} in this process on a free
 * loopback port, or with {@code --url} measures any OpenAI-compatible server (llama-server included).
 */
@Command(name = "bench-serve", sortOptions = false, mixinStandardHelpOptions = true,
        description = "Benchmark a server over HTTP with concurrent streaming clients (aya's own, or --url).")
public final class BenchServeCommand implements Callable<Integer> {

    @Option(names = "--url", paramLabel = "URL", description = "Measure this server (e.g. llama-server) instead of starting one.")
    URI url;

    @Option(names = "--clients", defaultValue = "1,2,4,8", paramLabel = "N,N,...", description = "Client counts to run. Default: ${DEFAULT-VALUE}.")
    String clients;

    @Option(names = "--gen-tokens", defaultValue = "32", paramLabel = "N", description = "Tokens generated per request. Default: ${DEFAULT-VALUE}.")
    int genTokens;

    @Option(names = "--prompt-tokens", defaultValue = "32", paramLabel = "N", description = "Prompt tokens per request. Default: ${DEFAULT-VALUE}.")
    int promptTokens;

    @Option(names = "--rounds", defaultValue = "2", paramLabel = "N", description = "Requests per client, one after another. Default: ${DEFAULT-VALUE}.")
    int rounds;

    @Option(names = "--api-key", paramLabel = "KEY", description = "Sent as Authorization: Bearer KEY (default: $AYA_API_KEY).")
    String apiKey;

    @Option(names = "--json", description = "Print the results as one JSON array.")
    boolean asJson;

    @Mixin
    ServerOptions server;

    @Override
    public Integer call() throws Exception {
        int[] counts = parseClients(clients);
        if (genTokens < 1 || promptTokens < 1 || rounds < 1) {
            throw new AyaException("--gen-tokens, --prompt-tokens and --rounds must be at least 1");
        }
        server.check();
        String key = apiKey != null ? apiKey : System.getenv("AYA_API_KEY");
        if (url != null) {
            if (!"http".equals(url.getScheme()) || url.getHost() == null) throw new AyaException("--url must be http://HOST:PORT, got " + url);
            print(measure(url, key, counts));
            return 0;
        }
        int most = Arrays.stream(counts).max().orElseThrow();
        try (AyaModel model = server.load()) {
            Scheduler.Options options = server.scheduler(model, most);
            if (promptTokens + genTokens > options.context()) {
                throw new AyaException("--prompt-tokens + --gen-tokens (" + (promptTokens + genTokens) + ") exceed the context of " + options.context());
            }
            try (Scheduler scheduler = new Scheduler(model, options);
                 ApiServer api = ApiServer.start(new ApiServer.Config("127.0.0.1", 0, key, server.model), System.err)) {
                api.ready(model, scheduler, options.context());
                System.err.println("aya: serving on " + api.url() + " (" + model.backendName() + " backend, "
                        + model.threads() + " threads, --parallel " + options.parallel() + ")");
                print(measure(URI.create(api.url()), key, counts));
            }
        }
        return 0;
    }

    private List<ServeBench.Result> measure(URI base, String key, int[] counts) {
        ServeBench bench = new ServeBench(base, key, promptTokens, genTokens, rounds);
        bench.warmUp();
        List<ServeBench.Result> results = new ArrayList<>();
        for (int n : counts) {
            ServeBench.Result r = bench.run(n);
            results.add(r);
            if (!asJson) System.err.println("aya: " + n + " clients done");
        }
        return results;
    }

    private void print(List<ServeBench.Result> results) throws Exception {
        if (asJson) {
            System.out.println(new ObjectMapper().writeValueAsString(results));
            return;
        }
        System.out.printf(Locale.ROOT, "%-8s %9s %8s %12s %13s %15s %12s %12s%n", "clients", "requests", "tokens",
                "total tok/s", "decode tok/s", "stream tok/s", "TTFT p50 ms", "TTFT p95 ms");
        for (ServeBench.Result r : results) {
            System.out.printf(Locale.ROOT, "%-8d %9d %8d %12.2f %13.2f %15.2f %12.0f %12.0f%n", r.clients(), r.requests(),
                    r.tokens(), r.aggregateTokensPerSecond(), r.decodeTokensPerSecond(), r.streamTokensPerSecondP50(),
                    r.ttftP50Ms(), r.ttftP95Ms());
        }
    }

    static int[] parseClients(String text) {
        String[] parts = text.split(",", -1);
        int[] out = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            try {
                out[i] = Integer.parseInt(parts[i].strip());
            } catch (NumberFormatException e) {
                throw new AyaException("--clients: '" + parts[i].strip() + "' is not a number; expected e.g. 1,2,4,8");
            }
            if (out[i] < 1 || out[i] > 1024) throw new AyaException("--clients: " + out[i] + " must be between 1 and 1024");
        }
        return out;
    }
}
