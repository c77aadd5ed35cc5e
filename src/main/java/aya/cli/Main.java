package aya.cli;

import aya.AyaException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ScopeType;

import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;

/** Entry point of {@code ./aya}: one picocli command per subcommand class. */
@Command(name = "aya", mixinStandardHelpOptions = true, version = "aya-java 0.1.0",
        description = "Run Cohere Tiny Aya on the CPU: native kernels over FFM, or pure Java.",
        subcommands = {
                InfoCommand.class,
                LogitsCommand.class,
                GenerateCommand.class,
                ChatCommand.class,
                TokenizeCommand.class,
                DownloadCommand.class,
                BenchCommand.class,
                InitRandomCommand.class,
                KernelBenchCommand.class,
                ServeCommand.class,
                BenchServeCommand.class,
        })
public final class Main implements Runnable {

    /** Exit code for every user error (bad flag, missing or corrupt file, bad input). */
    public static final int EXIT_USER_ERROR = 2;

    @Option(names = "--verbose", scope = ScopeType.INHERIT, description = "Print stack traces of errors.")
    static boolean verbose;

    @Override
    public void run() {
        new CommandLine(this).usage(System.err);
    }

    public static void main(String[] args) {
        CtrlC.install();
        System.exit(run(args));
    }

    /** Runs the CLI and returns its exit code (tests call this instead of main). */
    public static int run(String... args) {
        CommandLine cli = new CommandLine(new Main());
        cli.setErr(new PrintWriter(System.err, true, StandardCharsets.UTF_8));
        cli.setParameterExceptionHandler((ex, a) -> {
            System.err.println("aya: " + ex.getMessage());
            return EXIT_USER_ERROR;
        });
        cli.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            Throwable user = userError(ex);
            if (user != null) {
                System.err.println("aya: " + user.getMessage());
                if (verbose) ex.printStackTrace();
                return EXIT_USER_ERROR;
            }
            System.err.println("aya: internal error: " + ex);
            if (verbose) ex.printStackTrace();
            else System.err.println("aya: run with --verbose for the stack trace");
            return 1;
        });
        return cli.execute(args);
    }

    private static Throwable userError(Throwable ex) {
        for (Throwable t = ex; t != null; t = t.getCause()) {
            if (t instanceof AyaException) return t;
            if (t instanceof UncheckedIOException u) return new AyaException(u.getCause().getMessage(), u);
        }
        return null;
    }
}
