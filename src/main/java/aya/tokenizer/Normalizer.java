package aya.tokenizer;

import aya.AyaException;
import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** A tokenizer.json "normalizer": rewrites text before pre-tokenization (HF tokenizers semantics). */
interface Normalizer {
    String normalize(String text);

    static Normalizer fromJson(JsonNode json) {
        if (json == null || json.isNull()) return null;
        String type = Json.type(json, "normalizer");
        return switch (type) {
            case "NFC" -> text -> java.text.Normalizer.normalize(text, java.text.Normalizer.Form.NFC);
            case "NFD" -> text -> java.text.Normalizer.normalize(text, java.text.Normalizer.Form.NFD);
            case "NFKC" -> text -> java.text.Normalizer.normalize(text, java.text.Normalizer.Form.NFKC);
            case "NFKD" -> text -> java.text.Normalizer.normalize(text, java.text.Normalizer.Form.NFKD);
            case "Lowercase" -> Normalizer::lowercase;
            case "StripAccents" -> text -> removeMarks(text, false);
            case "Replace" -> replace(json);
            case "Prepend" -> {
                String prepend = Json.string(json, "prepend");
                yield text -> text.isEmpty() ? text : prepend + text;
            }
            case "Strip" -> {
                boolean left = json.path("strip_left").asBoolean(true);
                boolean right = json.path("strip_right").asBoolean(true);
                yield text -> Text.strip(text, left, right);
            }
            case "Sequence" -> {
                List<Normalizer> parts = new ArrayList<>();
                for (JsonNode n : Json.array(json, "normalizers")) parts.add(fromJson(n));
                yield text -> {
                    for (Normalizer part : parts) text = part.normalize(text);
                    return text;
                };
            }
            case "BertNormalizer" -> bert(json);
            case "ByteLevel" -> ByteLevel::encode;
            default -> throw new AyaException("unsupported normalizer type '" + type + "'");
        };
    }

    /** Rust lowercases char by char (no final-sigma rule); only U+0130 expands to two chars. */
    static String lowercase(String text) {
        StringBuilder out = new StringBuilder(text.length());
        for (int i = 0; i < text.length(); ) {
            int cp = text.codePointAt(i);
            i += Character.charCount(cp);
            if (cp == 0x130) out.append("i\u0307");
            else out.appendCodePoint(Character.toLowerCase(cp));
        }
        return out.toString();
    }

    /** StripAccents drops every combining mark (M*); BertNormalizer only non-spacing ones (Mn). */
    static String removeMarks(String text, boolean nonSpacingOnly) {
        StringBuilder out = new StringBuilder(text.length());
        for (int i = 0; i < text.length(); ) {
            int cp = text.codePointAt(i);
            i += Character.charCount(cp);
            int t = Character.getType(cp);
            boolean mark = t == Character.NON_SPACING_MARK
                    || !nonSpacingOnly && (t == Character.COMBINING_SPACING_MARK || t == Character.ENCLOSING_MARK);
            if (!mark) out.appendCodePoint(cp);
        }
        return out.toString();
    }

    private static Normalizer replace(JsonNode json) {
        Pattern pattern = Json.pattern(json.get("pattern"), "Replace normalizer");
        String content = Json.string(json, "content");
        String replacement = Matcher.quoteReplacement(content);
        return text -> pattern.matcher(text).replaceAll(replacement);
    }

    private static Normalizer bert(JsonNode json) {
        boolean cleanText = json.path("clean_text").asBoolean(true);
        boolean chinese = json.path("handle_chinese_chars").asBoolean(true);
        boolean lowercase = json.path("lowercase").asBoolean(true);
        JsonNode sa = json.get("strip_accents");
        boolean stripAccents = sa == null || sa.isNull() ? lowercase : sa.asBoolean();
        return text -> {
            StringBuilder out = new StringBuilder(text.length());
            for (int i = 0; i < text.length(); ) {
                int cp = text.codePointAt(i);
                i += Character.charCount(cp);
                if (cleanText) {
                    if (cp == 0 || cp == 0xFFFD || isBertControl(cp)) continue;
                    if (Text.isWhitespace(cp)) cp = ' ';
                }
                if (chinese && isChineseChar(cp)) out.append(' ').appendCodePoint(cp).append(' ');
                else out.appendCodePoint(cp);
            }
            String s = out.toString();
            if (stripAccents) {
                s = removeMarks(java.text.Normalizer.normalize(s, java.text.Normalizer.Form.NFD), true);
            }
            if (lowercase) s = lowercase(s);
            return s;
        };
    }

    private static boolean isBertControl(int cp) {
        if (cp == '\t' || cp == '\n' || cp == '\r') return false;
        int t = Character.getType(cp);
        return t == Character.CONTROL || t == Character.FORMAT || t == Character.PRIVATE_USE
                || t == Character.UNASSIGNED;
    }

    private static boolean isChineseChar(int cp) {
        return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF)
                || (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F)
                || (cp >= 0x2B920 && cp <= 0x2CEAF) || (cp >= 0xF900 && cp <= 0xFAFF)
                || (cp >= 0x2F800 && cp <= 0x2FA1F);
    }
}
