package aya.generation;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;

/** The tiny checkpoint with a tokenizer and chat template, and its transformers references (make_chat_fixture.py). */
public final class ChatFixture {
    public static final Path DIR = Path.of("src/test/resources/chat/tiny-chat");
    public static final JsonNode REFERENCE = read();

    private ChatFixture() {
    }

    private static JsonNode read() {
        try {
            return new ObjectMapper().readTree(DIR.resolve("reference.json").toFile());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static JsonNode testCase(String name) {
        return REFERENCE.get("cases").get(name);
    }

    public static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = array.get(i).asInt();
        return out;
    }

    /** The reference's generated ids without the end token that stopped them. */
    public static int[] replyIds(JsonNode c) {
        int[] ids = ints(c.get("ids"));
        return c.get("stopped_on_end_token").asBoolean()
                ? java.util.Arrays.copyOf(ids, ids.length - 1) : ids;
    }
}
