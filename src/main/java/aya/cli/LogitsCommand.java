package aya.cli;

import aya.AyaException;
import picocli.CommandLine.Command;

import java.util.concurrent.Callable;

/** PLACEHOLDER: replaced by the work that owns this command. */
@Command(name = "logits", description = "(not implemented yet)")
public final class LogitsCommand implements Callable<Integer> {
    @Override
    public Integer call() {
        throw new AyaException("'logits' is not implemented yet");
    }
}
