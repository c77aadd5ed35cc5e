package aya;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

class AyaExceptionTest {

    @Test
    void quotedLineBreaksAndControlCharactersAreEscapedSoTheMessageStaysOneLine() {
        assertEquals("index names shard b.safet\\nsors, which is missing",
                new AyaException("index names shard b.safet\nsors, which is missing").getMessage());
        assertEquals("a\\r\\nb\\u0000c\\u2028d\te", new AyaException("a\r\nb\u0000c\u2028d\te", null).getMessage());
        String plain = "config.json: hidden_size 100 is not divisible by num_attention_heads 3";
        assertSame(plain, AyaException.oneLine(plain));
    }
}
