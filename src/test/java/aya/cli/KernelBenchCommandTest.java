package aya.cli;

import aya.AyaException;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import static org.junit.jupiter.api.Assertions.*;

/** Bad flags of bench-kernels are user errors with a one-line reason (the benchmark itself is not run here). */
class KernelBenchCommandTest {

    private static String userError(String... args) {
        CommandLine cli = new CommandLine(new KernelBenchCommand());
        Throwable[] caught = new Throwable[1];
        cli.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            caught[0] = ex;
            return 2;
        });
        assertEquals(2, cli.execute(args));
        assertInstanceOf(AyaException.class, caught[0]);
        return caught[0].getMessage();
    }

    @Test
    void rejectsBadFlags() {
        assertEquals("unknown weight type 'q9' (expected f32, f16, bf16, q8_0, q4_0, q5_0, q4_k or q6_k)", userError("--type", "q9"));
        assertEquals("--tokens must be at least 2 (the prefill case), got 1", userError("--tokens", "1"));
        assertEquals("--threads must be at least 1, got 0", userError("--threads", "0"));
        assertEquals("unknown backend 'gpu' (java, native)", userError("--backends", "java,gpu"));
        assertEquals("--seconds must be positive, got 0.0", userError("--seconds", "0"));
        assertEquals("--activations 'f16': expected f32 or bf16", userError("--activations", "f16"));
        assertEquals("--activations bf16 needs --type bf16 (it rounds the activations of bf16 weight matrices), got q8_0",
                userError("--activations", "bf16", "--type", "q8_0"));
    }

    @Test
    void fromMemoryIsOffUnlessAsked() {
        KernelBenchCommand plain = new KernelBenchCommand(), cold = new KernelBenchCommand();
        new CommandLine(plain).parseArgs("--small");
        new CommandLine(cold).parseArgs("--small", "--from-memory");
        assertFalse(plain.fromMemory);
        assertTrue(cold.fromMemory);
        assertTrue(aya.kernels.KernelBench.Options.parse("--from-memory").fromMemory());
        assertFalse(aya.kernels.KernelBench.Options.parse().fromMemory());
    }
}
