package aya.generation;

import aya.AyaException;
import aya.tokenizer.ChatTemplate.Message;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static aya.generation.ChatFixture.*;
import static org.junit.jupiter.api.Assertions.*;

/** Session against transformers' greedy generate on the tiny chat checkpoint. */
class SessionTest {

    static AyaModel model;

    @BeforeAll
    static void load() {
        model = AyaModel.load(DIR, new AyaModel.Options("java", 1, null));
    }

    @AfterAll
    static void close() {
        model.close();
    }

    static GenerationSettings greedy() {
        return GenerationSettings.greedy(REFERENCE.get("meta").get("max_new_tokens").asInt());
    }

    @Test
    void endTokensAreGenerationConfigEosPlusTheTurnMarkersLookedUpByText() {
        assertArrayEquals(ints(REFERENCE.get("meta").get("end_ids")), model.endTokens());
    }

    @Test
    void rawPromptIsEncodedWithBosAndContinuesLikeTransformers() {
        JsonNode c = testCase("raw");
        assertArrayEquals(ints(c.get("prompt_ids")), model.tokenizer().encode(c.get("prompt").asText(), true));
        try (Session s = model.newSession()) {
            StringBuilder streamed = new StringBuilder();
            List<Integer> heard = new ArrayList<>();
            GenerationResult r = s.generate(c.get("prompt").asText(), greedy(), (id, text) -> {
                if (id >= 0) heard.add(id);
                streamed.append(text);
            });
            assertArrayEquals(replyIds(c), r.ids());
            assertEquals(StopReason.END_TOKEN, r.stopReason());
            assertEquals(c.get("text").asText(), r.text());
            assertEquals(r.text(), streamed.toString());
            assertArrayEquals(r.ids(), heard.stream().mapToInt(Integer::intValue).toArray(), "the end token is not passed on");
        }
    }

    @Test
    void chatPromptIdsAndReplyMatchTransformersAndTheSecondTurnReusesTheCache() {
        JsonNode c = testCase("chat");
        var template = model.chatTemplate().orElseThrow();
        List<Message> messages = new ArrayList<>(List.of(new Message("system", c.get("system").asText()),
                new Message("user", c.get("user").asText())));
        int[] prompt = template.encodeChat(messages, true);
        assertArrayEquals(ints(c.get("prompt_ids")), prompt);
        try (Session s = model.newSession()) {
            GenerationResult r = s.generate(prompt, greedy(), TokenListener.NONE);
            assertArrayEquals(replyIds(c), r.ids());
            assertEquals(c.get("text").asText(), r.text());
            assertEquals(0, r.reusedTokens());

            JsonNode c2 = testCase("chat_turn2");
            messages.add(new Message("assistant", r.text()));
            messages.add(new Message("user", c2.get("user").asText()));
            int[] prompt2 = template.encodeChat(messages, true);
            assertArrayEquals(ints(c2.get("prompt_ids")), prompt2);
            GenerationResult r2 = s.generate(prompt2, greedy(), TokenListener.NONE);
            assertArrayEquals(replyIds(c2), r2.ids());
            assertEquals(c2.get("text").asText(), r2.text());
            assertTrue(r2.reusedTokens() >= prompt.length, "turn 1 is not processed again: reused " + r2.reusedTokens());
        }
    }

    @Test
    void aPromptThatDivergesFromTheCacheRewindsToTheCommonPrefix() {
        JsonNode chat = testCase("chat"), noSystem = testCase("chat_no_system");
        int[] first = ints(chat.get("prompt_ids")), second = ints(noSystem.get("prompt_ids"));
        int common = 0;
        while (first[common] == second[common]) common++;
        try (Session s = model.newSession()) {
            s.generate(first, greedy(), TokenListener.NONE);
            GenerationResult r = s.generate(second, greedy(), TokenListener.NONE);
            assertEquals(common, r.reusedTokens(), "only the shared start (BOS, START_OF_TURN) is kept");
            assertArrayEquals(replyIds(noSystem), r.ids(), "the same as a fresh session (transformers' reply)");
            // the same prompt again: everything but the last token is reused (its logits are needed)
            GenerationResult again = s.generate(second, greedy(), TokenListener.NONE);
            assertEquals(second.length - 1, again.reusedTokens());
            assertArrayEquals(replyIds(noSystem), again.ids());
        }
    }

    @Test
    void theIteratorFormGivesTheSameTokensAndCanBeLeftEarly() {
        JsonNode c = testCase("raw_long");
        int[] prompt = ints(c.get("prompt_ids"));
        GenerationSettings settings = new GenerationSettings(GenerationSettings.greedy(1).sampling(), 40, List.of(), true);
        try (Session s = model.newSession()) {
            Session.Generation g = s.start(prompt, settings);
            assertThrows(IllegalStateException.class, g::result, "not finished yet");
            List<Integer> ids = new ArrayList<>();
            StringBuilder text = new StringBuilder();
            while (g.hasNext()) {
                Session.Token t = g.next();
                if (t.id() >= 0) ids.add(t.id());
                text.append(t.text());
            }
            assertArrayEquals(ints(c.get("ids")), ids.stream().mapToInt(Integer::intValue).toArray());
            assertEquals(c.get("text").asText(), text.toString());
            assertEquals(StopReason.MAX_TOKENS, g.result().stopReason());

            // leave a generation after 3 tokens: the session stays consistent for the next one
            Session.Generation partial = s.start(prompt, settings);
            for (int i = 0; i < 3; i++) partial.next();
            GenerationResult again = s.generate(prompt, settings, TokenListener.NONE);
            assertArrayEquals(ints(c.get("ids")), again.ids());
        }
    }

    @Test
    void neverChoosesIdsBeyondTheTokenizer() {
        // the fixture's extra output rows would win an unrestricted argmax at every step (checked by the script)
        int tokVocab = REFERENCE.get("meta").get("tokenizer_vocab").asInt();
        assertTrue(model.config().vocabSize() > tokVocab);
        try (Session s = model.newSession()) {
            GenerationResult r = s.generate(ints(testCase("raw_long").get("prompt_ids")),
                    new GenerationSettings(GenerationSettings.greedy(1).sampling(), 40, List.of(), true), TokenListener.NONE);
            assertArrayEquals(ints(testCase("raw_long").get("ids")), r.ids());
            for (int id : r.ids()) assertTrue(id < tokVocab);
        }
    }

    @Test
    void promptLongerThanTheContextFailsBeforeAnyWork() {
        try (Session s = model.newSession(8)) {
            AyaException e = assertThrows(AyaException.class,
                    () -> s.generate(new int[] {2, 10, 11, 12, 13, 14, 15, 16, 17}, greedy(), TokenListener.NONE));
            assertTrue(e.getMessage().contains("9 tokens") && e.getMessage().contains("context of 8"), e.getMessage());
            assertEquals(0, s.position());
        }
        assertThrows(AyaException.class, () -> model.newSession(model.config().maxPositionEmbeddings() + 1));
    }

    @Test
    void reachingTheContextEndStopsWithContextFull() {
        JsonNode c = testCase("raw_long");
        int[] prompt = ints(c.get("prompt_ids"));
        try (Session s = model.newSession(prompt.length + 5)) {
            GenerationResult r = s.generate(prompt,
                    new GenerationSettings(GenerationSettings.greedy(1).sampling(), 40, List.of(), true), TokenListener.NONE);
            assertEquals(StopReason.CONTEXT_FULL, r.stopReason());
            // the token sampled from the last position's logits is still output; it just cannot be fed
            assertEquals(6, r.ids().length);
            assertArrayEquals(java.util.Arrays.copyOf(ints(c.get("ids")), 6), r.ids());
        }
    }
}
