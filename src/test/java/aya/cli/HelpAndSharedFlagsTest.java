package aya.cli;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every command answers --help, and the flags every model-loading command shares are checked the same way everywhere. */
class HelpAndSharedFlagsTest extends CliCapture {

    static List<String> commands() {
        return new CommandLine(new Main()).getSubcommands().keySet().stream().sorted().toList();
    }

    @Test
    void everyCommandAnswersHelp() {
        assertTrue(commands().size() >= 10, commands().toString());
        for (String command : commands()) {
            out.reset();
            err.reset();
            assertEquals(0, Main.run(command, "--help"), command + ": " + stderr());
            assertTrue(stdout().startsWith("Usage: aya " + command), command + " --help printed:\n" + stdout());
        }
    }

    @Test
    void sharedFlagsGiveTheSameOneLineErrorsInEveryModelCommand() {
        // one line, exit 2, before anything is loaded (the model path does not exist)
        String[][] cases = {
                {"--threads", "0", "--threads must be between 1 and 1024, got 0"},
                {"--quant", "q3", "--quant 'q3': expected q8_0 or q4_0"},
                {"--activations", "fp8", "--activations 'fp8': expected f32 or bf16"},
        };
        for (String command : List.of("info", "logits", "generate", "chat", "serve")) {
            for (String[] c : cases) {
                out.reset();
                err.reset();
                List<String> args = new java.util.ArrayList<>(List.of(command, "--model", "/nonexistent/aya", c[0], c[1]));
                if (command.equals("logits")) args.addAll(List.of("--ids", "1,2", "--output", "/nonexistent/out.npy"));
                if (command.equals("generate")) args.add("hi");
                assertEquals(2, Main.run(args.toArray(String[]::new)), command + " " + c[0] + ": " + stderr());
                assertEquals("aya: " + c[2], stderr().strip(), command + " " + c[0]);
                assertFalse(stdout().contains("Exception"), stdout());
            }
        }
    }
}
