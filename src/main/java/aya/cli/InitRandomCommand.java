package aya.cli;

import aya.AyaException;
import picocli.CommandLine.Command;

import java.util.concurrent.Callable;

/** PLACEHOLDER: replaced by the work that owns this command. */
@Command(name = "init-random", description = "(not implemented yet)")
public final class InitRandomCommand implements Callable<Integer> {
    @Override
    public Integer call() {
        throw new AyaException("'init-random' is not implemented yet");
    }
}
