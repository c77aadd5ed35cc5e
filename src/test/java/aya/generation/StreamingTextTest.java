package aya.generation;

import aya.tokenizer.StreamingDecoder;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** Streamed text (the tokenizer's streaming decoder on byte tokens), stop strings, load progress. */
class StreamingTextTest {

    static final aya.tokenizer.Tokenizer TOKENIZER = aya.tokenizer.Tokenizer.load(ChatFixture.DIR.resolve("tokenizer.json"));

    /** The fixture tokenizer's id for one raw byte (byte-level BPE has a token for each of the 256 bytes). */
    static int byteToken(int b) {
        // GPT-2's byte-to-unicode map: printable Latin-1 bytes stand for themselves, the others for U+0100.. in order
        int next = 0;
        for (int x = 0; x < 256; x++) {
            boolean printable = (x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF);
            char c = printable ? (char) x : (char) (256 + next++);
            if (x == b) {
                int id = TOKENIZER.tokenId(String.valueOf(c));
                assertTrue(id >= 0, "byte token " + b);
                return id;
            }
        }
        throw new IllegalArgumentException();
    }

    static int[] byteTokens(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        int[] ids = new int[b.length];
        for (int i = 0; i < b.length; i++) ids[i] = byteToken(b[i] & 0xFF);
        return ids;
    }

    @Test
    void sessionTextIsUtf8SafeAndEqualsTheWholeDecodeOnRandomByteStreams() {
        // What Session streams: the tokenizer's StreamingDecoder, one byte token at a time.
        StreamingDecoder d = new StreamingDecoder(TOKENIZER, true);
        int[] smiley = byteTokens("😀");
        assertEquals("", d.accept(smiley[0]));
        assertEquals("", d.accept(smiley[1]));
        assertEquals("", d.accept(smiley[2]));
        assertEquals("😀", d.accept(smiley[3]));
        assertEquals("", d.accept(byteToken(0xC3)));
        assertEquals("\uFFFDA", d.accept(byteToken('A')), "a lead byte followed by ASCII is invalid");
        assertEquals("", d.accept(byteToken(0xE6)));
        assertEquals("\uFFFD", d.finish(), "an incomplete sequence at the end");

        Random random = new Random(7);
        int[] pool = byteTokens("aé日😀ß\u0416 ");
        for (int round = 0; round < 200; round++) {
            int[] ids = new int[random.nextInt(30)];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = random.nextInt(10) == 0 ? byteToken(random.nextInt(256)) : pool[random.nextInt(pool.length)];
            }
            StreamingDecoder stream = new StreamingDecoder(TOKENIZER, true);
            StringBuilder s = new StringBuilder();
            for (int id : ids) {
                String piece = stream.accept(id);
                assertFalse(!piece.isEmpty() && Character.isHighSurrogate(piece.charAt(piece.length() - 1)), "no half surrogate pair");
                s.append(piece);
            }
            s.append(stream.finish());
            assertEquals(TOKENIZER.decode(ids, true), s.toString());
        }
    }

    static String stream(List<String> stops, String... pieces) {
        StopStrings s = new StopStrings(stops);
        StringBuilder out = new StringBuilder();
        for (String p : pieces) {
            out.append(s.push(p)).append('|');
            if (s.stopped()) return out.toString();
        }
        return out.append(s.finish()).toString();
    }

    @Test
    void stopStringsAreHeldBackUntilResolvedAndNeverPrinted() {
        // "|" marks what each push released
        assertEquals("Hello |world|", stream(List.of("###"), "Hello ", "world"));
        assertEquals("Hello |wor|ld||", stream(List.of("###"), "Hello ", "wor", "ld#", "##x"));
        assertEquals("ab|c||#", stream(List.of("##"), "ab", "c", "#"), "a held '#' comes out at the end");
        assertEquals("x|a||", stream(List.of("STOP"), "x", "aS", "TOP"), "across pieces");
        assertEquals("|a|", stream(List.of("STOP", "b"), "", "abSTO", "Pb"), "the earliest stop wins");
        assertEquals("|ST||", stream(List.of("ST!"), "S", "TS", "T!"), "a partial match that fails is released");
        assertEquals("one ||", stream(List.of("\n\n"), "one \n", "\nmore"));
    }

    @Test
    void loadProgressPrintsASummaryOnlyWhenLoadingIsSlow() {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        PrintStream log = new PrintStream(buf, true, StandardCharsets.UTF_8);
        Path dir = ChatFixture.DIR;
        AyaModel.load(dir, new AyaModel.Options("java", 1, log), new LoadProgress(log, false, 0)).close();
        String s = buf.toString(StandardCharsets.UTF_8);
        assertTrue(s.startsWith("aya: loaded " + dir) && s.endsWith(" s" + System.lineSeparator()), s);
        assertEquals(1, s.lines().count(), "not a terminal: one summary line, no redrawn progress");
        buf.reset();
        AyaModel.load(dir, new AyaModel.Options("java", 1, log), new LoadProgress(log, true, 0)).close();
        s = buf.toString(StandardCharsets.UTF_8);
        assertTrue(s.contains("\raya: reading weights 100%"), s);
        buf.reset();
        AyaModel.load(dir, new AyaModel.Options("java", 1, log)).close();
        assertEquals("", buf.toString(StandardCharsets.UTF_8), "a fast load says nothing");
    }
}
