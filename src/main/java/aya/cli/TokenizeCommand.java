package aya.cli;

import aya.AyaException;
import picocli.CommandLine.Command;

import java.util.concurrent.Callable;

/** PLACEHOLDER: replaced by the work that owns this command. */
@Command(name = "tokenize", description = "(not implemented yet)")
public final class TokenizeCommand implements Callable<Integer> {
    @Override
    public Integer call() {
        throw new AyaException("'tokenize' is not implemented yet");
    }
}
