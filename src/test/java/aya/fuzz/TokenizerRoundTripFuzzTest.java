package aya.fuzz;

import aya.tokenizer.Tokenizer;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.junit.jupiter.api.BeforeAll;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * Arbitrary bytes through the Aya-style byte-level BPE tokenizer (no normalizer): encode must succeed and decode
 * must give back exactly the text (byte-level BPE is lossless); decoding arbitrary ids gives text or an AyaException.
 */
class TokenizerRoundTripFuzzTest {

    static Tokenizer tokenizer;

    @BeforeAll
    static void load() {
        tokenizer = Tokenizer.load(Path.of("src/test/resources/tokenizer/aya/tokenizer.json"));
    }

    @FuzzTest(maxDuration = "5s")
    void roundTrip(byte[] input) {
        String text = new String(input, StandardCharsets.UTF_8); // invalid UTF-8 becomes U+FFFD, as a reader would
        int[] ids = tokenizer.encode(text, false);
        String back = tokenizer.decode(ids, false);
        if (!back.equals(text)) {
            throw new AssertionError("decode(encode(s)) != s for " + java.util.Arrays.toString(input) + ": " + back);
        }
        // the same bytes read as ids (4 bytes each, any int): decoding never fails except by a one-line AyaException
        int[] raw = new int[input.length / 4];
        for (int i = 0; i < raw.length; i++) {
            raw[i] = (input[4 * i] & 0xff) | (input[4 * i + 1] & 0xff) << 8 | (input[4 * i + 2] & 0xff) << 16 | input[4 * i + 3] << 24;
        }
        FuzzSupport.onlyUserErrors(() -> tokenizer.decode(raw, false));
        int[] inRange = new int[raw.length];
        for (int i = 0; i < raw.length; i++) inRange[i] = Math.floorMod(raw[i], tokenizer.vocabSize());
        tokenizer.decode(inRange, true);
    }
}
