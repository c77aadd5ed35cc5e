package aya.generation;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.*;

/** The streaming detokenizer and stop strings, on hand-made byte tokens with known UTF-8. */
class StreamingTextTest {

    /** A byte-level "tokenizer": id i < 256 is the byte i; decoding is lossy UTF-8 like HF's. */
    static final Function<int[], String> BYTES = ids -> {
        byte[] b = new byte[ids.length];
        for (int i = 0; i < ids.length; i++) b[i] = (byte) ids[i];
        return new String(b, StandardCharsets.UTF_8);
    };

    static int[] utf8(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        int[] ids = new int[b.length];
        for (int i = 0; i < b.length; i++) ids[i] = b[i] & 0xFF;
        return ids;
    }

    @Test
    void neverEmitsHalfACharacter() {
        StreamingDecoder d = new StreamingDecoder(BYTES);
        assertEquals("a", d.push('a'));
        assertEquals("", d.push(0xC3)); // first byte of é
        assertEquals("é", d.push(0xA9));
        int[] smiley = utf8("😀"); // F0 9F 98 80: a surrogate pair in Java
        assertEquals("", d.push(smiley[0]));
        assertEquals("", d.push(smiley[1]));
        assertEquals("", d.push(smiley[2]));
        assertEquals("😀", d.push(smiley[3]));
        assertEquals("", d.finish());
    }

    @Test
    void invalidBytesBecomeReplacementCharactersOnceResolved() {
        StreamingDecoder d = new StreamingDecoder(BYTES);
        assertEquals("", d.push(0xC3));
        assertEquals("\uFFFDA", d.push('A'), "a lead byte followed by ASCII is invalid");
        assertEquals("", d.push(0xE6));
        assertEquals("\uFFFD", d.finish(), "an incomplete sequence at the end");
    }

    @Test
    void piecesConcatenateToTheWholeDecodeForRandomByteStreams() {
        Random random = new Random(7);
        int[] pool = utf8("aé日😀ß\u0416 ");
        for (int round = 0; round < 300; round++) {
            int[] ids = new int[random.nextInt(30)];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = random.nextInt(10) == 0 ? random.nextInt(256) : pool[random.nextInt(pool.length)];
            }
            StreamingDecoder d = new StreamingDecoder(BYTES);
            StringBuilder s = new StringBuilder();
            for (int id : ids) {
                String piece = d.push(id);
                assertFalse(!piece.isEmpty() && Character.isHighSurrogate(piece.charAt(piece.length() - 1)), "no half surrogate pair");
                s.append(piece);
            }
            s.append(d.finish());
            assertEquals(BYTES.apply(ids), s.toString());
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
