package aya;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Every relative link in README.md and docs/*.md resolves: the file or folder exists, and a {@code #fragment} names
 * a heading of the target page (GitHub's anchors). External links (http, https, mailto) are not followed.
 */
class DocsLinksTest {

    static final Pattern LINK = Pattern.compile("\\[[^\\]]*\\]\\(([^)\\s]+)\\)");
    static final Pattern FENCE = Pattern.compile("^\\s*```");

    /** The page's markdown links outside code blocks and inline code. */
    static List<String> links(String markdown) {
        List<String> out = new ArrayList<>();
        boolean inFence = false;
        for (String line : markdown.split("\n", -1)) {
            if (FENCE.matcher(line).find()) {
                inFence = !inFence;
                continue;
            }
            if (inFence) continue;
            Matcher m = LINK.matcher(line.replaceAll("`[^`]*`", "``"));
            while (m.find()) out.add(m.group(1));
        }
        return out;
    }

    /** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
    static String anchor(String heading) {
        return heading.strip().toLowerCase(Locale.ROOT).replaceAll("[^\\p{L}\\p{N}\\- _]", "").replace(' ', '-');
    }

    static List<String> anchors(String markdown) {
        List<String> out = new ArrayList<>();
        boolean inFence = false;
        for (String line : markdown.split("\n", -1)) {
            if (FENCE.matcher(line).find()) inFence = !inFence;
            else if (!inFence && line.startsWith("#")) out.add(anchor(line.replaceFirst("^#+", "")));
        }
        return out;
    }

    /** Problems with the links of one page, as "page: link: what is wrong". */
    static List<String> broken(Path page) throws IOException {
        List<String> problems = new ArrayList<>();
        String text = Files.readString(page);
        for (String link : links(text)) {
            if (link.matches("^[a-zA-Z][a-zA-Z0-9+.-]*:.*")) continue; // http:, https:, mailto:
            int hash = link.indexOf('#');
            String file = hash < 0 ? link : link.substring(0, hash);
            String fragment = hash < 0 ? null : link.substring(hash + 1);
            Path target = file.isEmpty() ? page : page.toAbsolutePath().getParent().resolve(file).normalize();
            if (!Files.exists(target)) {
                problems.add(page + ": " + link + ": no such file " + target);
            } else if (fragment != null && target.toString().endsWith(".md")
                    && !anchors(Files.readString(target)).contains(fragment)) {
                problems.add(page + ": " + link + ": no heading #" + fragment + " in " + target);
            }
        }
        return problems;
    }

    @Test
    void theCheckFindsBrokenLinksAndAnchors(@org.junit.jupiter.api.io.TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("b.md"), "# Title\n\n## Sub part: two\n");
        Path a = dir.resolve("a.md");
        Files.writeString(a, """
                [ok](b.md) [ok](b.md#sub-part-two) [ok](#local) [web](https://example.org/x)
                [missing](c.md) [bad anchor](b.md#nope) `[code](d.md)`
                ```
                [in a fence](e.md)
                ```
                ## Local
                """);
        List<String> problems = broken(a);
        assertEquals(2, problems.size(), problems.toString());
        assertTrue(problems.get(0).contains("c.md: no such file"), problems.get(0));
        assertTrue(problems.get(1).contains("no heading #nope"), problems.get(1));
    }

    @Test
    void readmeAndDocsLinksResolve() throws IOException {
        List<Path> pages = new ArrayList<>();
        pages.add(Path.of("README.md"));
        try (Stream<Path> docs = Files.list(Path.of("docs"))) {
            docs.filter(p -> p.toString().endsWith(".md")).sorted().forEach(pages::add);
        }
        assertTrue(pages.size() > 1, "docs/ has no pages");
        List<String> problems = new ArrayList<>();
        for (Path page : pages) problems.addAll(broken(page));
        assertEquals(List.of(), problems, "broken links");
    }
}
