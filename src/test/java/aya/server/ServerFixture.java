package aya.server;

import aya.cli.CtrlCTest;
import aya.generation.AyaModel;
import aya.generation.Scheduler;

import java.io.IOException;
import java.nio.file.Path;

/** The tiny chat checkpoint for server tests, with max_position_embeddings raised so a stream can run for a long time. */
final class ServerFixture {

    private ServerFixture() {
    }

    /** The tiny chat model with {@code 2^20} positions (its weights do not depend on it): see CtrlCTest. */
    static Path longModel(Path tmp) throws IOException {
        return CtrlCTest.longModel(tmp);
    }

    /** native when it loads, else java; one thread (the machine is shared). */
    static AyaModel load(Path dir) {
        return AyaModel.load(dir, new AyaModel.Options(CtrlCTest.backend(), 1, null));
    }

    /** A server on a free loopback port, ready, over {@code scheduler}. */
    static ApiServer serve(AyaModel model, Scheduler scheduler, int context, String apiKey) {
        ApiServer server = ApiServer.start(new ApiServer.Config("127.0.0.1", 0, apiKey, "tiny-chat"), System.err);
        server.ready(model, scheduler, context);
        return server;
    }
}
