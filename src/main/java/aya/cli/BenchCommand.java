package aya.cli;

import aya.AyaException;
import picocli.CommandLine.Command;

import java.util.concurrent.Callable;

/** PLACEHOLDER: replaced by the work that owns this command. */
@Command(name = "bench", description = "(not implemented yet)")
public final class BenchCommand implements Callable<Integer> {
    @Override
    public Integer call() {
        throw new AyaException("'bench' is not implemented yet");
    }
}
