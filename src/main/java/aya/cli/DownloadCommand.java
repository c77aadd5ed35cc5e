package aya.cli;

import aya.AyaException;
import aya.hub.ModelLocator;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code ./aya download REPO [--revision R]}: fills the Hugging Face cache and prints the snapshot directory. */
@Command(name = "download", mixinStandardHelpOptions = true,
        description = {"Download a model from the Hugging Face hub into its standard cache (shared with huggingface-cli)",
                "and print the snapshot directory. Only missing files are fetched; interrupted downloads resume.",
                "Environment: HF_TOKEN (gated models), HF_HOME, HF_HUB_CACHE, HF_ENDPOINT, HF_HUB_OFFLINE=1."})
public final class DownloadCommand implements Callable<Integer> {

    @Parameters(index = "0", paramLabel = "REPO", description = "Repo id, e.g. CohereLabs/tiny-aya-global, or REPO:QUANT for one"
            + " GGUF file, e.g. CohereLabs/tiny-aya-global-GGUF:Q4_K_M (prints the file)")
    String repo;

    @Option(names = "--revision", paramLabel = "R", defaultValue = "main",
            description = "Branch, tag or commit sha (default: ${DEFAULT-VALUE})")
    String revision;

    @Override
    public Integer call() {
        int colon = repo.indexOf(':');
        if (colon > 0) {
            if (!revision.equals("main")) throw new AyaException("--revision is not supported with REPO:QUANT (the GGUF is taken from main)");
            System.out.println(ModelLocator.fromEnvironment().resolveGguf(repo.substring(0, colon), repo.substring(colon + 1)).toAbsolutePath());
            return 0;
        }
        Path snapshot = ModelLocator.fromEnvironment().download(repo, revision);
        System.out.println(snapshot.toAbsolutePath());
        return 0;
    }
}
