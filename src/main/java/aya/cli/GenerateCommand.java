package aya.cli;

import aya.AyaException;
import picocli.CommandLine.Command;

import java.util.concurrent.Callable;

/** PLACEHOLDER: replaced by the work that owns this command. */
@Command(name = "generate", description = "(not implemented yet)")
public final class GenerateCommand implements Callable<Integer> {
    @Override
    public Integer call() {
        throw new AyaException("'generate' is not implemented yet");
    }
}
