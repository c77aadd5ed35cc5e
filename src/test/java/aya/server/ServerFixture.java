package aya.server;

import aya.generation.AyaModel;
import aya.generation.ChatFixture;
import aya.generation.Scheduler;
import aya.kernels.Backends;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/** The tiny chat checkpoint for server tests, with max_position_embeddings raised so a stream can run for a long time. */
final class ServerFixture {

    private ServerFixture() {
    }

    /** A copy of the tiny chat model whose config allows {@code 2^20} positions (its weights do not depend on it). */
    static Path longModel(Path tmp) throws IOException {
        Path dir = tmp.resolve("long-chat");
        Files.createDirectories(dir);
        try (Stream<Path> files = Files.list(ChatFixture.DIR)) {
            for (Path f : files.toList()) Files.copy(f, dir.resolve(f.getFileName()));
        }
        ObjectMapper json = new ObjectMapper();
        ObjectNode config = (ObjectNode) json.readTree(dir.resolve("config.json").toFile());
        config.put("max_position_embeddings", 1 << 20);
        json.writeValue(dir.resolve("config.json").toFile(), config);
        return dir;
    }

    /** native when it loads, else java; one thread (the machine is shared). */
    static AyaModel load(Path dir) {
        String backend = Backends.available().contains("native") ? "native" : "java";
        return AyaModel.load(dir, new AyaModel.Options(backend, 1, null));
    }

    /** A server on a free loopback port, ready, over {@code scheduler}. */
    static ApiServer serve(AyaModel model, Scheduler scheduler, int context, String apiKey) {
        ApiServer server = ApiServer.start(new ApiServer.Config("127.0.0.1", 0, apiKey, "tiny-chat"), System.err);
        server.ready(model, scheduler, context);
        return server;
    }
}
