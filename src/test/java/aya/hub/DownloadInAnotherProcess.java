package aya.hub;

import java.io.PrintStream;
import java.net.URI;
import java.nio.file.Path;

/** A second JVM for {@link CrossProcessDownloadTest}: downloads a repo into a cache and prints the snapshot path. */
public final class DownloadInAnotherProcess {

    public static void main(String[] args) {
        Path cache = Path.of(args[0]);
        HubSettings settings = new HubSettings(cache, URI.create(args[1]), null, cache.resolve("token"), false);
        Path snapshot = new ModelLocator(settings, new PrintStream(System.err, true), false).download(args[2], "main");
        System.out.println(snapshot);
    }
}
