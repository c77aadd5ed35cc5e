package aya.cli;

import aya.AyaException;
import aya.generation.AyaModel;
import aya.generation.Scheduler;
import aya.server.ApiServer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import sun.misc.Signal;

import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

/**
 * {@code aya serve}: an OpenAI-compatible HTTP server (see docs/server.md). Listens at once (/health answers 503
 * while the model loads), prints one line with the URL when ready, and on SIGTERM or Ctrl-C stops accepting,
 * lets the requests in flight finish (cancelling them after {@link #GRACE_MILLIS}) and exits 0.
 */
@Command(name = "serve", sortOptions = false, mixinStandardHelpOptions = true,
        description = "Serve the model over HTTP with OpenAI's API (/v1/chat/completions, /v1/completions, ...).")
public final class ServeCommand implements Callable<Integer> {

    /** How long in-flight requests may run on after SIGTERM before they are cancelled. */
    static final long GRACE_MILLIS = 5_000;

    @Mixin
    ServerOptions server;

    @Option(names = "--host", defaultValue = "127.0.0.1", paramLabel = "ADDR",
            description = "Address to listen on (0.0.0.0 = every interface). Default: ${DEFAULT-VALUE}.")
    String host;

    @Option(names = "--port", defaultValue = "8080", paramLabel = "N", description = "Port (0 = any free one). Default: ${DEFAULT-VALUE}.")
    int port;

    @Option(names = "--api-key", paramLabel = "KEY",
            description = "Require Authorization: Bearer KEY on every endpoint but /health (default: $AYA_API_KEY, else none).")
    String apiKey;

    /** --parallel when not given. */
    static final int DEFAULT_PARALLEL = 4;

    @Override
    public Integer call() throws InterruptedException {
        server.check();
        if (port < 0 || port > 65535) throw new AyaException("--port must be between 0 and 65535, got " + port);
        if (apiKey != null && apiKey.isEmpty()) throw new AyaException("--api-key is empty");
        String key = apiKey != null ? apiKey : System.getenv("AYA_API_KEY");
        if (key != null && key.isEmpty()) key = null;
        // Signals first: a SIGTERM while loading also ends cleanly.
        CountDownLatch stop = new CountDownLatch(1);
        for (String signal : new String[] {"TERM", "INT"}) {
            try {
                Signal.handle(new Signal(signal), s -> stop.countDown());
            } catch (IllegalArgumentException e) {
                // the signal is ignored (nohup, -Xrs): keep the JVM's behaviour
            }
        }
        ApiServer api = ApiServer.start(new ApiServer.Config(host, port, key, server.model), System.err);
        try (AyaModel model = server.load()) {
            Scheduler.Options options = server.scheduler(model, DEFAULT_PARALLEL);
            try (Scheduler scheduler = new Scheduler(model, options)) {
                api.ready(model, scheduler, options.context());
                System.out.println("aya: listening on " + api.url() + " (" + model.backendName() + " backend, "
                        + model.threads() + " threads, " + options.parallel() + " x " + options.context() + " tokens)");
                System.out.flush();
                stop.await();
                System.err.println("aya: stopping: finishing the requests in flight");
                api.drain();
                Thread closer = Thread.ofPlatform().start(() -> api.stop((int) (GRACE_MILLIS / 1000) + 2));
                scheduler.shutdown(GRACE_MILLIS);
                closer.join();
            }
        } finally {
            api.close();
        }
        System.err.println("aya: stopped");
        return 0;
    }
}
