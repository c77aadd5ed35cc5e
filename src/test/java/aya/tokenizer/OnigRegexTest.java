package aya.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The translated character classes contain exactly the code points Oniguruma (HF tokenizers) puts in them. */
class OnigRegexTest {

    /** The linear digit-group matcher agrees with the translated regex on random mixes of digits and others. */
    @Test
    void digitGroupMatcherAgreesWithRegex() {
        java.util.regex.Pattern regex = OnigRegex.compile(PreTokenizer.DIGIT_GROUPS_REGEX);
        String[] alphabet = {"1", "2", "0", "٣", "३", "𝟙", "a", "é", "_", " ", ".", ",", "-", "½", "²", "①", "Ⅻ", "\u0301", "\u200d", "x", "\n", "😀"};
        java.util.Random random = new java.util.Random(42);
        for (int trial = 0; trial < 20_000; trial++) {
            StringBuilder sb = new StringBuilder();
            int len = random.nextInt(14);
            for (int i = 0; i < len; i++) sb.append(alphabet[random.nextInt(alphabet.length)]);
            String s = sb.toString();
            List<String> want = new ArrayList<>();
            java.util.regex.Matcher m = regex.matcher(s);
            while (m.find()) want.add(m.start() + "-" + m.end());
            List<String> got = new ArrayList<>();
            PreTokenizer.digitGroups(s, (start, end) -> got.add(start + "-" + end));
            assertEquals(want, got, () -> "digit groups of " + TokenizerParityTest.show(s));
        }
    }

    @Test
    void classesMatchOnigurumaOverAllCodePoints() throws IOException {
        JsonNode all = new ObjectMapper().readTree(Path.of("src/test/resources/tokenizer/regex_classes.json").toFile());
        List<String> report = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = all.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            BitSet want = new BitSet(0x110000);
            for (JsonNode r : e.getValue()) want.set(r.get(0).asInt(), r.get(1).asInt() + 1);
            Pattern p = OnigRegex.compile("(?:" + e.getKey() + ")");
            BitSet got = new BitSet(0x110000);
            for (int cp = 0; cp < 0x110000; cp++) {
                if (cp >= 0xD800 && cp <= 0xDFFF) continue;
                if (p.matcher(Character.toString(cp)).matches()) got.set(cp);
            }
            BitSet diff = (BitSet) want.clone();
            diff.xor(got);
            if (!diff.isEmpty()) {
                StringBuilder sb = new StringBuilder(e.getKey() + ": " + diff.cardinality() + " differ:");
                diff.stream().limit(12).forEach(cp -> sb.append(String.format(" U+%04X(%s,want=%b)", cp, Character.getType(cp), want.get(cp))));
                report.add(sb.toString());
            }
        }
        assertTrue(report.isEmpty(), String.join("\n", report));
    }

    /**
     * Brace quantifiers as HF tokenizers (Oniguruma, Ruby syntax) reads them: {,n} = {0,n}, n > m = possessive,
     * an invalid interval is a literal '{' (make_regex_quantifier_fixtures.py). Two forms that mean something else
     * in Java ({n}? and an interval followed by '+') are refused with one line rather than matched differently.
     */
    @Test
    void braceQuantifiersMatchOniguruma() throws IOException {
        JsonNode cases = new ObjectMapper().readTree(Path.of("src/test/resources/tokenizer/regex_quantifiers.json").toFile());
        java.util.Set<String> refused = java.util.Set.of("ab{1}?c", "a{1,2}+");
        assertEquals(29, cases.size());
        for (JsonNode c : cases) {
            String pattern = c.get("pattern").asText(), text = c.get("text").asText();
            if (c.has("error") || refused.contains(pattern)) {
                aya.AyaException e = org.junit.jupiter.api.Assertions.assertThrows(aya.AyaException.class,
                        () -> OnigRegex.compile(pattern), pattern);
                assertTrue(e.getMessage().contains(pattern) && !e.getMessage().contains("\n"), e.getMessage());
                continue;
            }
            List<String> want = new ArrayList<>();
            c.get("matches").forEach(m -> want.add(m.asText()));
            List<String> got = new ArrayList<>();
            java.util.regex.Matcher m = OnigRegex.compile(pattern).matcher(text);
            while (m.find()) if (m.end() > m.start()) got.add(m.group());
            assertEquals(want, got, () -> pattern + " on " + text + " (as Java: " + OnigRegex.translate(pattern) + ")");
        }
    }
}
