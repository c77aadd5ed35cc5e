package aya.cli;

import aya.AyaException;
import picocli.CommandLine.Command;

import java.util.concurrent.Callable;

/** PLACEHOLDER: replaced by the work that owns this command. */
@Command(name = "chat", description = "(not implemented yet)")
public final class ChatCommand implements Callable<Integer> {
    @Override
    public Integer call() {
        throw new AyaException("'chat' is not implemented yet");
    }
}
