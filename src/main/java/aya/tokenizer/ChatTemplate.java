package aya.tokenizer;

import aya.AyaException;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.filter.Filter;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import jinjava.javax.el.CompositeELResolver;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

import java.beans.FeatureDescriptor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The model's Jinja chat template (HF {@code apply_chat_template}), rendered with Jinjava configured like
 * transformers' sandbox (trim_blocks, lstrip_blocks) plus the helpers HF templates use: raise_exception,
 * strftime_now, the special-token strings, Python string methods (.strip(), .split(), .startswith(), ...) and a
 * Python-style tojson.
 *
 * <p>Injection safety: message text can never become a control token. Before rendering, every place in a message
 * where a special token's text starts gets a {@link #GUARD} char after its first char, so the rendered prompt only
 * contains the template's own markers as real special-token text; the guards are removed before the text is
 * tokenized. (HF itself would turn a user's literal {@code <|END_OF_TURN_TOKEN|>} into the control token.)
 */
public final class ChatTemplate {
    /**
     * A chat message, as in transformers' {@code apply_chat_template}: {@code Message.user("Hi")}.
     *
     * @param role    "system", "user" or "assistant" (the template decides what else it accepts)
     * @param content the text (null = empty)
     */
    public record Message(String role, String content) {
        /** Checks the role; a null content becomes "". */
        public Message {
            if (role == null) throw new AyaException("chat message without a role");
            if (content == null) content = "";
        }

        /** A system message (instructions for the whole conversation). */
        public static Message system(String content) {
            return new Message("system", content);
        }

        /** A user turn. */
        public static Message user(String content) {
            return new Message("user", content);
        }

        /** A reply of the model (e.g. {@code GenerationResult.text()}), to carry the conversation on. */
        public static Message assistant(String content) {
            return new Message("assistant", content);
        }
    }

    /** U+FDD0 is a Unicode noncharacter: never meaningful text. A user's own U+FDD0 is written doubled. */
    static final char GUARD = '\uFDD0';
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String[] SPECIAL_TOKEN_KEYS = {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token",
            "cls_token", "mask_token"};

    private final String source;
    private final String template;
    private final Tokenizer tokenizer;
    private final Map<String, Object> specialTokens;
    private final AddedVocabulary specialMatcher = new AddedVocabulary();
    private final List<String> specialTexts = new ArrayList<>();
    private final Jinjava jinjava;
    /** Conditions of the template's loop filters, in order (see rewriteLoopFilters). */
    private final List<String> loopConditions = new ArrayList<>();

    ChatTemplate(String source, String template, Tokenizer tokenizer, Map<String, Object> specialTokens) {
        this.source = source;
        this.template = rewriteLoopFilters(rewriteJinja2Syntax(jinja2Source(template)), loopConditions);
        this.tokenizer = tokenizer;
        this.specialTokens = specialTokens;
        for (int id = 0; id < tokenizer.vocabSize(); id++) {
            if (tokenizer.isSpecial(id)) {
                specialTexts.add(tokenizer.token(id));
                specialMatcher.add(new AddedVocabulary.AddedToken(id, tokenizer.token(id), true, false, false, false, false),
                        tokenizer.token(id));
            }
        }
        JinjavaConfig config = JinjavaConfig.newBuilder()
                .withTrimBlocks(true)
                .withLstripBlocks(true)
                .withFailOnUnknownTokens(false)
                // Jinja2 prints a value as it is; Jinjava would render "{{ ... }}" found inside a value again, running
                // message text as template code (e.g. "{{ bos_token }}" in a message became a control token)
                .withNestedInterpretationEnabled(false)
                .withElResolver(pythonResolver())
                // Python Jinja2 behaviour: {{- -}} trimming, operator precedence, Python reprs, dict iteration...
                // (not WhitespaceRequiredWithinTokens: it stops "{{-x}}" from parsing).
                .withLegacyOverrides(LegacyOverrides.newBuilder()
                        .withEvaluateMapKeys(true)
                        .withIterateOverMapKeys(true)
                        .withUsePyishObjectMapper(true)
                        .withUseNaturalOperatorPrecedence(true)
                        .withParseWhitespaceControlStrictly(true)
                        .withAllowAdjacentTextNodes(true)
                        .withUseTrimmingForNotesAndExpressions(true)
                        .withKeepNullableLoopValues(true)
                        .build())
                .build();
        jinjava = new Jinjava(config);
        jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception",
                ChatTemplate.class, "raiseException", String.class));
        jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "strftime_now",
                ChatTemplate.class, "strftimeNow", String.class));
        jinjava.getGlobalContext().registerFilter(new PythonToJson());
        jinjava.getGlobalContext().registerFilter(new LoopFilter());
        jinjava.getGlobalContext().registerFilter(new PythonTrim());
        jinjava.getGlobalContext().registerExpTest(new IsNone());
    }

    /**
     * Python's None for variables transformers always passes (tools, documents): defined, falsy, "is none",
     * printed as "None". A plain Java null would make {@code tools is defined} false, unlike Jinja2.
     */
    static final class PyNone implements com.hubspot.jinjava.util.HasObjectTruthValue, com.hubspot.jinjava.objects.serialization.PyishSerializable {
        static final PyNone NONE = new PyNone();

        private PyNone() {
        }

        @Override
        @SuppressWarnings("unchecked")
        public <T extends Appendable & CharSequence> T appendPyishString(T appendable) throws IOException {
            return (T) appendable.append("None");
        }

        @Override
        public String toString() {
            return "None";
        }

        @Override
        public boolean getObjectTruthValue() {
            return false;
        }
    }

    /** "x is none" that also knows PyNone. */
    static final class IsNone implements com.hubspot.jinjava.lib.exptest.ExpTest {
        @Override
        public String getName() {
            return "none";
        }

        @Override
        public boolean evaluate(Object var, JinjavaInterpreter interpreter, Object... args) {
            return var == null || var == PyNone.NONE;
        }
    }

    /**
     * Jinjava has no loop filters ({@code {% for m in messages if m.role != 'system' %}}): rewrite them into our
     * {@code aya_loop_filter} filter, which keeps the items for which the condition holds (so loop.index/last
     * count only those, as in Jinja2).
     */
    static String rewriteLoopFilters(String template, List<String> conditions) {
        java.util.regex.Matcher m = LOOP_IF.matcher(template);
        StringBuilder out = new StringBuilder();
        while (m.find()) {
            String var = m.group(2);
            conditions.add(m.group(4));
            String replacement = "{%" + m.group(1) + " for " + var + " in (" + m.group(3) + ") | aya_loop_filter('" + var
                    + "', " + (conditions.size() - 1) + ") " + m.group(5) + "%}";
            m.appendReplacement(out, java.util.regex.Matcher.quoteReplacement(replacement));
        }
        m.appendTail(out);
        return out.toString();
    }

    /** Jinja2's lexer turns every \\r\\n or \\r into \\n, and drops one trailing newline (keep_trailing_newline=False). */
    static String jinja2Source(String template) {
        String s = template.replace("\r\n", "\n").replace('\r', '\n');
        return s.endsWith("\n") ? s.substring(0, s.length() - 1) : s;
    }

    /**
     * Rewrites Jinja2 syntax that Jinjava parses differently, inside {{ }} and {% %} only:
     * {@code x[::-1]} (reversed list), {@code not x is defined} ("is" binds tighter than "not" in Jinja2),
     * and keyword arguments of namespace(...) (Jinjava needs {@code a=(b|length - 1)} parenthesized).
     */
    static String rewriteJinja2Syntax(String template) {
        java.util.regex.Matcher tags = TAG.matcher(template);
        StringBuilder out = new StringBuilder();
        while (tags.find()) {
            String tag = tags.group();
            tag = tag.replace("[::-1]", "|reverse|list");
            tag = NOT_IS.matcher(tag).replaceAll("not ($1 is $2$3)");
            java.util.regex.Matcher ns = NAMESPACE_CALL.matcher(tag);
            StringBuilder t = new StringBuilder();
            while (ns.find()) {
                ns.appendReplacement(t, java.util.regex.Matcher.quoteReplacement("namespace(" + parenthesizeKwargs(ns.group(1)) + ")"));
            }
            ns.appendTail(t);
            tags.appendReplacement(out, java.util.regex.Matcher.quoteReplacement(t.toString()));
        }
        tags.appendTail(out);
        return out.toString();
    }

    /** "a=1, b=x|length - 1" → "a=(1), b=(x|length - 1)" (commas inside brackets or quotes do not split). */
    private static String parenthesizeKwargs(String args) {
        List<String> parts = new ArrayList<>();
        int depth = 0;
        char quote = 0;
        int start = 0;
        for (int i = 0; i < args.length(); i++) {
            char c = args.charAt(i);
            if (quote != 0) {
                if (c == '\\') i++;
                else if (c == quote) quote = 0;
            } else if (c == '\'' || c == '"') quote = c;
            else if (c == '(' || c == '[' || c == '{') depth++;
            else if (c == ')' || c == ']' || c == '}') depth--;
            else if (c == ',' && depth == 0) {
                parts.add(args.substring(start, i));
                start = i + 1;
            }
        }
        parts.add(args.substring(start));
        List<String> out = new ArrayList<>();
        for (String p : parts) {
            java.util.regex.Matcher kv = KWARG.matcher(p);
            out.add(kv.matches() ? kv.group(1) + "=(" + kv.group(2) + ")" : p);
        }
        return String.join(",", out);
    }

    private static final java.util.regex.Pattern TAG = java.util.regex.Pattern.compile("\\{\\{.*?\\}\\}|\\{%.*?%\\}", java.util.regex.Pattern.DOTALL);
    private static final java.util.regex.Pattern NOT_IS = java.util.regex.Pattern.compile(
            "\\bnot\\s+([A-Za-z_]\\w*(?:\\.[A-Za-z_]\\w*|\\[[^\\[\\]]*\\])*)\\s+is\\s+(not\\s+)?([A-Za-z_]\\w*)");
    private static final java.util.regex.Pattern NAMESPACE_CALL = java.util.regex.Pattern.compile(
            "namespace\\(((?:[^()]|\\([^()]*\\))*)\\)");
    private static final java.util.regex.Pattern KWARG = java.util.regex.Pattern.compile("\\s*([A-Za-z_]\\w*)\\s*=(?!=)(.*)", java.util.regex.Pattern.DOTALL);

    private static final java.util.regex.Pattern LOOP_IF = java.util.regex.Pattern.compile(
            "\\{%(-?)\\s*for\\s+([A-Za-z_][A-Za-z_0-9]*)\\s+in\\s+((?:(?!%\\}).)+?)\\s+if\\s+((?:(?!%\\}).)+?)\\s*(-?)%\\}", java.util.regex.Pattern.DOTALL);

    /** aya_loop_filter(var, n): the items for which loop condition #n is true with var bound to the item. */
    final class LoopFilter implements Filter {
        @Override
        public String getName() {
            return "aya_loop_filter";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            List<Object> kept = new ArrayList<>();
            if (var == null) return kept;
            Iterable<?> items = var instanceof Iterable<?> it ? it : var instanceof Map<?, ?> map ? map.keySet() : List.of(var);
            for (Object item : items) {
                try (var scope = interpreter.enterScope()) {
                    interpreter.getContext().put(args[0], item);
                    String condition = loopConditions.get(Integer.parseInt(args[1].trim()));
                    Object ok = interpreter.resolveELExpression(condition, interpreter.getLineNumber());
                    if (com.hubspot.jinjava.util.ObjectTruthValue.evaluate(ok)) kept.add(item);
                }
            }
            return kept;
        }
    }

    /**
     * The chat template of a model directory: {@code chat_template.jinja}, else {@code chat_template} in
     * tokenizer_config.json (a string, or a list of named templates: "default" is used). Empty when the model has
     * none (a base model has no chat mode).
     */
    public static Optional<ChatTemplate> load(Path modelDir, Tokenizer tokenizer) {
        Path configFile = modelDir.resolve("tokenizer_config.json");
        JsonNode config = JSON.createObjectNode();
        if (Files.exists(configFile)) {
            try {
                config = JSON.readTree(Files.readAllBytes(configFile));
            } catch (JsonProcessingException e) {
                throw new AyaException(configFile + ": malformed JSON: " + e.getOriginalMessage().lines().findFirst().orElse(""));
            } catch (IOException e) {
                throw new AyaException(configFile + ": cannot read: " + e.getMessage());
            }
            if (!config.isObject()) throw new AyaException(configFile + ": not a JSON object");
        }
        Map<String, Object> specials = new LinkedHashMap<>();
        for (String key : SPECIAL_TOKEN_KEYS) {
            JsonNode v = config.get(key);
            if (v == null || v.isNull()) continue;
            specials.put(key, v.isObject() ? v.path("content").asText() : v.asText());
        }
        JsonNode extra = config.get("additional_special_tokens");
        if (extra != null && extra.isArray()) {
            List<String> list = new ArrayList<>();
            for (JsonNode v : extra) list.add(v.isObject() ? v.path("content").asText() : v.asText());
            specials.put("additional_special_tokens", list);
        }

        Path jinjaFile = modelDir.resolve("chat_template.jinja");
        if (Files.exists(jinjaFile)) {
            try {
                return Optional.of(new ChatTemplate(jinjaFile.toString(), Files.readString(jinjaFile), tokenizer, specials));
            } catch (IOException e) {
                throw new AyaException(jinjaFile + ": cannot read: " + e.getMessage());
            }
        }
        JsonNode t = config.get("chat_template");
        if (t == null || t.isNull()) return Optional.empty();
        String where = configFile + " chat_template";
        if (t.isTextual()) return Optional.of(new ChatTemplate(where, t.asText(), tokenizer, specials));
        if (t.isArray()) {
            for (JsonNode named : t) {
                if ("default".equals(named.path("name").asText()) && named.path("template").isTextual()) {
                    return Optional.of(new ChatTemplate(where + "[default]", named.get("template").asText(), tokenizer, specials));
                }
            }
            throw new AyaException(where + ": a list of templates without one named \"default\"");
        }
        throw new AyaException(where + ": must be a string or a list of {name, template}");
    }

    /** The same model's tokenizer and special tokens with another template text (tests, --chat-template). */
    ChatTemplate withTemplate(String otherTemplate) {
        return new ChatTemplate("template", otherTemplate, tokenizer, specialTokens);
    }

    /** Reads a JSON array of {"role": ..., "content": ...} messages. */
    public static List<Message> readMessages(Path file) {
        JsonNode root;
        try {
            root = JSON.readTree(Files.readAllBytes(file));
        } catch (NoSuchFileException e) {
            throw new AyaException(file + ": file not found");
        } catch (JsonProcessingException e) {
            throw new AyaException(file + ": malformed JSON: " + e.getOriginalMessage().lines().findFirst().orElse(""));
        } catch (IOException e) {
            throw new AyaException(file + ": cannot read: " + e.getMessage());
        }
        if (root == null || !root.isArray()) throw new AyaException(file + ": expected a JSON array of {role, content} messages");
        List<Message> messages = new ArrayList<>();
        for (int i = 0; i < root.size(); i++) {
            JsonNode m = root.get(i);
            if (!m.isObject() || !m.path("role").isTextual()) {
                throw new AyaException(file + ": message #" + i + " needs a string \"role\"");
            }
            JsonNode content = m.get("content");
            if (content != null && !content.isNull() && !content.isTextual()) {
                throw new AyaException(file + ": message #" + i + " \"content\" must be a string");
            }
            messages.add(new Message(m.get("role").asText(), content == null || content.isNull() ? "" : content.asText()));
        }
        return messages;
    }

    /** The rendered prompt text, exactly as HF apply_chat_template(tokenize=False) gives it. */
    public String render(List<Message> messages, boolean addGenerationPrompt) {
        return unguard(renderGuarded(messages, addGenerationPrompt));
    }

    /**
     * The ids of the rendered prompt, tokenized as apply_chat_template(tokenize=True) does (no post-processor, so
     * no second BOS), except that message text never becomes a special token.
     */
    public int[] encodeChat(List<Message> messages, boolean addGenerationPrompt) {
        String rendered = renderGuarded(messages, addGenerationPrompt);
        return tokenizer.encodeGuarded(rendered, GUARD);
    }

    private String renderGuarded(List<Message> messages, boolean addGenerationPrompt) {
        List<Map<String, Object>> list = new ArrayList<>();
        for (Message m : messages) {
            Map<String, Object> map = new LinkedHashMap<>();
            map.put("role", guard(m.role())); // some templates print the role (Llama 3): it is text too
            map.put("content", guard(m.content()));
            list.add(map);
        }
        Map<String, Object> bindings = new HashMap<>(specialTokens);
        bindings.put("messages", list);
        bindings.put("add_generation_prompt", addGenerationPrompt);
        bindings.put("tools", PyNone.NONE);
        bindings.put("documents", PyNone.NONE);
        RenderResult result = jinjava.renderForResult(template, bindings);
        for (TemplateError e : result.getErrors()) {
            if (e.getSeverity() == TemplateError.ErrorType.FATAL) {
                for (Throwable c = e.getException(); c != null; c = c.getCause()) {
                    if (c instanceof AyaException raised) throw new AyaException(source + ": " + raised.getMessage(), raised);
                }
                String msg = e.getMessage() == null ? String.valueOf(e.getReason()) : e.getMessage().lines().findFirst().orElse("");
                throw new AyaException(source + ": template error" + (e.getLineno() > 0 ? " at line " + e.getLineno() : "") + ": " + msg);
            }
        }
        return result.getOutput();
    }

    /**
     * Breaks every special-token text in s with a GUARD after its first code point (at every position where some
     * special token starts, overlapping ones too); doubles s's own GUARD chars. A marker can also be completed by
     * what the template puts next to s (another message's text when a template joins them): so a proper prefix of a
     * special token that ends s, or a proper suffix that starts it, is broken too, both on s and on s as the template
     * sees it after strip()/trim.
     */
    String guard(String s) {
        int n = s.length();
        boolean[] before = new boolean[n + 1]; // before[i]: a GUARD goes before char i (i == n: at the end)
        for (int i = 0; i < n; i += Character.charCount(s.codePointAt(i))) {
            if (specialMatcher.longestAt(s, i) > i) before[i + Character.charCount(s.codePointAt(i))] = true;
        }
        int lead = n - s.stripLeading().length(), trail = s.stripTrailing().length();
        for (String t : specialTexts) {
            for (int k = 1; k < t.length(); k++) {
                for (int end : new int[] {n, trail}) {
                    int at = end - k;
                    if (at >= 0 && s.regionMatches(at, t, 0, k)) before[Math.min(end, at + Character.charCount(s.codePointAt(at)))] = true;
                }
                for (int start : new int[] {0, lead}) {
                    if (start + k <= n && s.regionMatches(start, t, t.length() - k, k)) {
                        int at = start + k - 1; // before the overlap's last char, never inside a surrogate pair
                        if (at > start && Character.isLowSurrogate(s.charAt(at)) && Character.isHighSurrogate(s.charAt(at - 1))) at--;
                        before[at] = true;
                    }
                }
            }
        }
        StringBuilder out = new StringBuilder(n + 8);
        for (int i = 0; i < n; i++) {
            if (before[i]) out.append(GUARD);
            char c = s.charAt(i);
            out.append(c);
            if (c == GUARD) out.append(GUARD);
        }
        if (before[n]) out.append(GUARD);
        return out.toString();
    }

    /** Removes guards: a doubled GUARD is the user's own char, a single one is dropped. */
    static String unguard(String s) {
        if (s.indexOf(GUARD) < 0) return s;
        StringBuilder out = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c != GUARD) {
                out.append(c);
            } else if (i + 1 < s.length() && s.charAt(i + 1) == GUARD) {
                out.append(GUARD);
                i++;
            }
        }
        return out.toString();
    }

    // ---- HF template helpers ----

    public static String raiseException(String message) {
        throw new AyaException("chat template raised: " + message);
    }

    public static String strftimeNow(String format) {
        return PythonStrings.strftime(LocalDateTime.now(), format);
    }

    /** Python's json.dumps(x, ensure_ascii=False) style (", " and ": " separators), as HF's tojson. */
    static final class PythonToJson implements Filter {
        @Override
        public String getName() {
            return "tojson";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            StringBuilder sb = new StringBuilder();
            PythonStrings.json(var, sb);
            return sb.toString();
        }
    }

    /** Jinja2's trim is Python's str.strip (Unicode whitespace); Jinjava's only trims ASCII. */
    static final class PythonTrim implements Filter {
        @Override
        public String getName() {
            return "trim";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            if (var == null) return "";
            return PythonStrings.strip(var.toString(), args.length > 0 ? args[0] : null, true, true);
        }
    }

    /** Resolves Python string methods on Java strings, then defers to Jinjava's default resolver. */
    private static ELResolver pythonResolver() {
        CompositeELResolver composite = new CompositeELResolver();
        composite.add(new ELResolver() {
            @Override
            public Object invoke(ELContext context, Object base, Object method, Class<?>[] paramTypes, Object[] params) {
                if (!(base instanceof String s) || method == null) return null;
                Optional<Object> r = PythonStrings.call(s, method.toString(), params == null ? new Object[0] : params);
                if (r.isEmpty()) return null;
                context.setPropertyResolved(true);
                return r.get();
            }

            @Override
            public Class<?> getCommonPropertyType(ELContext context, Object base) {
                return null;
            }

            @Override
            public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) {
                return null;
            }

            @Override
            public Class<?> getType(ELContext context, Object base, Object property) {
                return null;
            }

            @Override
            public Object getValue(ELContext context, Object base, Object property) {
                return null;
            }

            @Override
            public boolean isReadOnly(ELContext context, Object base, Object property) {
                return true;
            }

            @Override
            public void setValue(ELContext context, Object base, Object property, Object value) {
            }
        });
        composite.add(com.hubspot.jinjava.el.JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_ONLY);
        return composite;
    }

    @Override
    public String toString() {
        return "ChatTemplate(" + source + ")";
    }
}
