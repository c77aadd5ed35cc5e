package aya.tokenizer;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/** UTF-8 decoding with Rust's rules: strict, or lossy with one U+FFFD per maximal invalid subpart. */
final class Utf8 {
    private Utf8() {
    }

    /** The text of valid UTF-8, or null. */
    static String decodeStrict(byte[] bytes) {
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            return null;
        }
    }

    /** Like Rust's String::from_utf8_lossy. */
    static String decodeLossy(byte[] b) {
        StringBuilder out = new StringBuilder(b.length);
        int i = 0;
        while (i < b.length) {
            int c = b[i] & 0xFF;
            if (c < 0x80) {
                out.append((char) c);
                i++;
                continue;
            }
            int len = validSequenceLength(b, i);
            if (len > 0) {
                out.append(new String(b, i, len, StandardCharsets.UTF_8));
                i += len;
            } else {
                out.append('\uFFFD');
                i += Math.max(1, -len);
            }
        }
        return out.toString();
    }

    /**
     * The length of the valid sequence at i, or minus the length of the maximal invalid subpart
     * (a lead byte plus the continuation bytes that were still acceptable), at least 1.
     */
    static int validSequenceLength(byte[] b, int i) {
        int c = b[i] & 0xFF;
        int need;
        int lo = 0x80;
        int hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) need = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else return -1;
        int k = 1;
        for (; k <= need; k++) {
            if (i + k >= b.length) return -k;
            int x = b[i + k] & 0xFF;
            int l = k == 1 ? lo : 0x80;
            int h = k == 1 ? hi : 0xBF;
            if (x < l || x > h) return -k;
        }
        return need + 1;
    }
}
