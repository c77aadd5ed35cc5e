package aya.tokenizer;

import aya.AyaException;
import com.fasterxml.jackson.databind.JsonNode;

import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** A tokenizer.json "decoder": turns token strings back into text (HF's decode_chain, then concatenation). */
interface Decoder {
    List<String> decodeChain(List<String> tokens);

    static Decoder fromJson(JsonNode json) {
        if (json == null || json.isNull()) return null;
        String type = Json.type(json, "decoder");
        return switch (type) {
            case "ByteLevel" -> Decoder::byteLevel;
            case "ByteFallback" -> Decoder::byteFallback;
            case "Fuse" -> tokens -> List.of(String.join("", tokens));
            case "Strip" -> {
                int content = Json.string(json, "content").codePointAt(0);
                int start = json.path("start").asInt(0);
                int stop = json.path("stop").asInt(0);
                yield tokens -> {
                    List<String> out = new ArrayList<>(tokens.size());
                    for (String t : tokens) out.add(strip(t, content, start, stop));
                    return out;
                };
            }
            case "Replace" -> {
                Pattern pattern = Json.pattern(json.get("pattern"), "Replace decoder");
                String content = Matcher.quoteReplacement(Json.string(json, "content"));
                yield tokens -> {
                    List<String> out = new ArrayList<>(tokens.size());
                    for (String t : tokens) out.add(pattern.matcher(t).replaceAll(content));
                    return out;
                };
            }
            case "Metaspace" -> {
                int marker = Json.string(json, "replacement").codePointAt(0);
                String scheme;
                if (json.has("prepend_scheme")) scheme = json.get("prepend_scheme").asText();
                else scheme = json.path("add_prefix_space").asBoolean(true) ? "always" : "never";
                boolean stripFirst = !scheme.equals("never");
                yield tokens -> {
                    List<String> out = new ArrayList<>(tokens.size());
                    for (int i = 0; i < tokens.size(); i++) {
                        String t = tokens.get(i);
                        StringBuilder sb = new StringBuilder(t.length());
                        for (int j = 0; j < t.length(); ) {
                            int cp = t.codePointAt(j);
                            j += Character.charCount(cp);
                            if (cp != marker) sb.appendCodePoint(cp);
                            else if (i != 0 || !stripFirst) sb.append(' ');
                        }
                        out.add(sb.toString());
                    }
                    return out;
                };
            }
            case "WordPiece" -> {
                String prefix = json.path("prefix").asText("##");
                boolean cleanup = json.path("cleanup").asBoolean(true);
                yield tokens -> {
                    List<String> out = new ArrayList<>(tokens.size());
                    for (int i = 0; i < tokens.size(); i++) {
                        String t = tokens.get(i);
                        if (i != 0) t = t.startsWith(prefix) ? t.substring(prefix.length()) : " " + t;
                        if (cleanup) t = cleanup(t);
                        out.add(t);
                    }
                    return out;
                };
            }
            case "BPEDecoder" -> {
                String suffix = json.path("suffix").asText("</w>");
                yield tokens -> {
                    List<String> out = new ArrayList<>(tokens.size());
                    for (int i = 0; i < tokens.size(); i++) {
                        out.add(tokens.get(i).replace(suffix, i == tokens.size() - 1 ? "" : " "));
                    }
                    return out;
                };
            }
            case "Sequence" -> {
                List<Decoder> parts = new ArrayList<>();
                for (JsonNode n : Json.array(json, "decoders")) parts.add(fromJson(n));
                yield tokens -> {
                    for (Decoder d : parts) tokens = d.decodeChain(tokens);
                    return tokens;
                };
            }
            default -> throw new AyaException("unsupported decoder type '" + type + "'");
        };
    }

    /** Byte-level chars back to bytes; a token with a non byte-level char contributes its own UTF-8. */
    private static List<String> byteLevel(List<String> tokens) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        for (String t : tokens) {
            byte[] b = ByteLevel.decode(t);
            if (b == null) b = t.getBytes(java.nio.charset.StandardCharsets.UTF_8);
            bytes.writeBytes(b);
        }
        return List.of(Utf8.decodeLossy(bytes.toByteArray()));
    }

    /** Runs of {@code <0xNN>} tokens become their UTF-8 text, or one U+FFFD per byte if invalid. */
    private static List<String> byteFallback(List<String> tokens) {
        List<String> out = new ArrayList<>(tokens.size());
        ByteArrayOutputStream pending = new ByteArrayOutputStream();
        for (String t : tokens) {
            int b = byteToken(t);
            if (b >= 0) {
                pending.write(b);
                continue;
            }
            flushBytes(pending, out);
            out.add(t);
        }
        flushBytes(pending, out);
        return out;
    }

    private static void flushBytes(ByteArrayOutputStream pending, List<String> out) {
        if (pending.size() == 0) return;
        byte[] b = pending.toByteArray();
        String s = Utf8.decodeStrict(b);
        if (s != null) out.add(s);
        else for (int i = 0; i < b.length; i++) out.add("\uFFFD");
        pending.reset();
    }

    /** The byte of a {@code <0xNN>} token, or -1. */
    static int byteToken(String t) {
        if (t.length() != 6 || !t.startsWith("<0x") || t.charAt(5) != '>') return -1;
        try {
            return Integer.parseInt(t.substring(3, 5), 16);
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    private static String strip(String t, int content, int start, int stop) {
        int[] cps = t.codePoints().toArray();
        int from = 0;
        while (from < start && from < cps.length && cps[from] == content) from++;
        int to = cps.length;
        int stripped = 0;
        while (stripped < stop && to > from && cps[to - 1] == content) {
            to--;
            stripped++;
        }
        return new String(cps, from, to - from);
    }

    private static String cleanup(String s) {
        return s.replace(" .", ".").replace(" ?", "?").replace(" !", "!").replace(" ,", ",")
                .replace(" ' ", "'").replace(" n't", "n't").replace(" 'm", "'m").replace(" do not", " don't")
                .replace(" 's", "'s").replace(" 've", "'ve").replace(" 're", "'re");
    }
}
