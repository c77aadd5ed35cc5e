package aya.tokenizer;

import aya.AyaException;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The small API the generation code uses, on the Tiny-Aya-structured fixture (ids as HF's trainer assigned them). */
class TokenizerApiTest {
    private final Tokenizer tok = Tokenizer.load(TokenizerParityTest.FIXTURES.resolve("aya/tokenizer.json"));

    @Test
    void lookupsAndSizes() {
        // HF's BpeTrainer gives the special tokens the first ids, in the order we listed them.
        assertEquals(0, tok.tokenId("<PAD>"));
        assertEquals(2, tok.tokenId("<BOS_TOKEN>"));
        assertEquals(6, tok.tokenId("<|END_OF_TURN_TOKEN|>"));
        assertEquals(-1, tok.tokenId("no such token"));
        assertEquals("<BOS_TOKEN>", tok.token(2));
        assertNull(tok.token(-1));
        assertNull(tok.token(tok.vocabSize()));
        assertEquals(2001, tok.vocabSize(), "HF get_vocab_size(with_added_tokens=True) of this fixture");
        assertTrue(tok.isSpecial(2));
        assertTrue(tok.isSpecial(tok.tokenId("<|END_RESPONSE|>")));
        assertFalse(tok.isSpecial(tok.tokenId("a")));
    }

    @Test
    void encodeDecodeRoundTripAndErrors() {
        String text = "Grüße, 世界! 12345 👋🏽";
        int[] ids = tok.encode(text, true);
        assertEquals(2, ids[0], "the post-processor prepends BOS");
        assertArrayEquals(java.util.Arrays.copyOfRange(ids, 1, ids.length), tok.encode(text, false));
        assertEquals("<BOS_TOKEN>" + text, tok.decode(ids));
        assertEquals(text, tok.decode(ids, true));
        AyaException e = assertThrows(AyaException.class, () -> tok.decode(new int[]{1, 5000}));
        assertTrue(e.getMessage().contains("token id 5000 is out of range"), e.getMessage());
        // Special-token text is a control token in encode(), plain text when matching is off.
        assertArrayEquals(new int[]{2}, tok.encodeNoPostProcess("<BOS_TOKEN>", true));
        int[] plain = tok.encodeNoPostProcess("<BOS_TOKEN>", false);
        assertTrue(plain.length > 1);
        assertEquals("<BOS_TOKEN>", tok.decode(plain));
    }

    @Test
    void missingFileIsAUserError() {
        AyaException e = assertThrows(AyaException.class, () -> Tokenizer.load(Path.of("no/such/tokenizer.json")));
        assertEquals("no/such/tokenizer.json: file not found", e.getMessage());
    }
}
