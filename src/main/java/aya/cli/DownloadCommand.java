package aya.cli;

import aya.AyaException;
import picocli.CommandLine.Command;

import java.util.concurrent.Callable;

/** PLACEHOLDER: replaced by the work that owns this command. */
@Command(name = "download", description = "(not implemented yet)")
public final class DownloadCommand implements Callable<Integer> {
    @Override
    public Integer call() {
        throw new AyaException("'download' is not implemented yet");
    }
}
