package aya.fuzz;

import aya.cli.Main;
import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Fuzzes CLI value parsing end to end through {@link Main#run}: a subcommand, the tiny f32 test checkpoint, and
 * fuzzed flags with fuzzed values (--ids, --max-tokens, --context, --threads, --chunk, --backend, --temperature...).
 * Exit code 1 means an internal error (an exception that is not the user's fault): that is a finding.
 * --model and --output are never fuzzed: the campaign must not read or write outside its scratch directory.
 */
class CliFuzzTest {

    static final String MODEL = Path.of("src/test/resources/model/f32-tied").toAbsolutePath().toString();
    static final String[] COMMANDS = {"info", "logits", "generate", "nosuchcommand"};
    static final String[] VALUE_FLAGS = {"--ids", "--max-tokens", "--context", "--threads", "--chunk", "--backend",
            "--temperature", "--ids", "--ids"};
    static final String[] SWITCHES = {"--print-ids", "--ignore-eos", "--help", "--version", "--", "-", "--ids="};
    static Path dir;

    @BeforeAll
    static void makeDir() {
        dir = FuzzSupport.scratchDir("cli");
    }

    @AfterAll
    static void removeDir() {
        FuzzSupport.deleteTree(dir);
    }

    @FuzzTest(maxDuration = "10s")
    @DictionaryEntries({"2,17,42", "319", "320", "-1", "2147483647", "2147483648", "0x10", "1e3", "java", "native",
            "auto", " ", ",", ",,", "\u0662", "NaN", "Infinity", "-0"})
    void cli(FuzzedDataProvider in) throws Exception {
        List<String> args = new ArrayList<>();
        args.add(in.pickValue(COMMANDS));
        if (in.consumeBoolean()) {
            args.add("--model");
            args.add(MODEL);
        }
        args.add("--output");
        args.add(dir.resolve("out.npy").toString());
        int flags = in.consumeInt(0, 6);
        for (int i = 0; i < flags; i++) {
            if (in.consumeBoolean()) {
                args.add(in.pickValue(VALUE_FLAGS));
                args.add(in.consumeString(48));
            } else {
                args.add(in.pickValue(SWITCHES));
            }
        }
        int code;
        try (AutoCloseable quiet = FuzzSupport.silenceStdStreams()) {
            code = Main.run(args.toArray(String[]::new));
        }
        if (code != 0 && code != Main.EXIT_USER_ERROR) {
            throw new AssertionError("exit code " + code + " (internal error) for " + args);
        }
    }
}
