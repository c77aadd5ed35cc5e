package aya.cli;

import aya.AyaException;
import aya.generation.AyaModel;
import aya.generation.GenerationResult;
import aya.generation.GenerationSettings;
import aya.generation.Session;
import aya.generation.StopReason;
import aya.tokenizer.ChatTemplate;
import aya.tokenizer.ChatTemplate.Message;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * {@code aya chat}: a multi-turn conversation on stdin/stdout. Each turn renders the whole conversation with the
 * model's chat template and hands it to the session, which keeps the KV cache of everything it has seen and
 * processes only the new suffix (the reply it generated and the new user message). {@code /reset} forgets the
 * conversation, {@code /exit} or end of input (Ctrl-D) quits. Ctrl-C stops a reply (what was shown stays in the
 * conversation); Ctrl-C at the prompt, or twice during a reply, quits with exit code 130 ({@link CtrlC}). With
 * stdin a pipe, each line is a user message and
 * only the replies are printed, one per line.
 */
@Command(name = "chat", sortOptions = false, mixinStandardHelpOptions = true,
        description = "Chat with the model (one message per line; /reset, /exit, Ctrl-D; Ctrl-C stops a reply).")
public final class ChatCommand implements Callable<Integer> {

    @Option(names = "--system", paramLabel = "TEXT", description = "System message at the start of the conversation.")
    String system;

    @Mixin
    GenerationOptions options;

    @Override
    public Integer call() throws IOException {
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        // strict UTF-8: a bad byte in the input is an error, not a silent replacement character
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT)));
        var console = System.console();
        boolean interactive = console != null && console.isTerminal();
        try (AyaModel model = options.load()) {
            ChatTemplate template = model.chatTemplate().orElseThrow(() -> new AyaException(model.directory()
                    + " has no chat template (a base model?): use ./aya generate for plain text continuation"));
            int context = options.context(model);
            options.settings(model, context, 0, -1); // check the flags before the first message
            List<Message> messages = new ArrayList<>();
            if (system != null) messages.add(new Message("system", system));
            int turn = 0;
            try (Session session = model.newSession(context)) {
                while (true) {
                    if (interactive) {
                        out.print("> ");
                        out.flush();
                    }
                    String line;
                    try {
                        line = in.readLine();
                    } catch (CharacterCodingException e) {
                        throw new AyaException("standard input is not valid UTF-8");
                    }
                    if (line == null) { // end of input: Ctrl-D or the end of the pipe
                        if (interactive) out.println();
                        break;
                    }
                    String text = line.strip();
                    if (text.isEmpty()) continue;
                    if (text.equals("/exit")) break;
                    if (text.equals("/reset")) {
                        messages.subList(system != null ? 1 : 0, messages.size()).clear();
                        session.reset();
                        if (interactive) out.println("(conversation cleared)");
                        continue;
                    }
                    messages.add(new Message("user", line));
                    int[] prompt = template.encodeChat(messages, true);
                    if (prompt.length >= context) {
                        messages.removeLast();
                        System.err.println("aya: the conversation (" + prompt.length + " tokens) no longer fits the context of "
                                + context + ": /reset to start over, or raise --context");
                        continue;
                    }
                    GenerationSettings settings = options.settings(model, context, turn++, -1);
                    StringBuilder shown = new StringBuilder();
                    GenerationResult r = null;
                    CtrlC.startReply(); // the first Ctrl-C from here on stops this reply instead of quitting
                    try {
                        Session.Generation g = session.start(prompt, settings);
                        while (!CtrlC.replyStopped() && g.hasNext()) {
                            String piece = g.next().text();
                            if (!piece.isEmpty()) {
                                out.print(piece);
                                out.flush();
                                shown.append(piece);
                            }
                        }
                        if (!CtrlC.replyStopped()) r = g.result();
                    } finally {
                        CtrlC.endReply();
                    }
                    out.println();
                    out.flush();
                    if (r == null) {
                        System.err.println("aya: reply stopped (Ctrl-C at the prompt quits)");
                    } else if (r.stopReason() == StopReason.CONTEXT_FULL) {
                        System.err.println("aya: stopped: the context of " + context + " tokens is full: /reset to start over");
                    }
                    // The reply goes into the history as text; the next rendering wraps it as the template says.
                    // A reply stopped by Ctrl-C stays as far as it was shown, as in llama.cpp: the history is what
                    // the user saw (the session then reuses its cache up to where the rendering differs).
                    messages.add(new Message("assistant", r == null ? shown.toString() : r.text()));
                }
            }
        }
        return 0;
    }
}
