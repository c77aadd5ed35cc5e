package aya;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Every public type in src/main/java has a Javadoc comment. The javadoc run in {@code mvn verify} (doclint all but
 * "missing", warnings fail the build) checks what the comments say; this checks none is missing on a type.
 */
class PublicTypesDocumentedTest {

    static final Pattern PUBLIC_TYPE = Pattern.compile(
            "^\\s*public\\s+(?:(?:static|final|abstract|sealed|non-sealed)\\s+)*(?:class|record|interface|enum|@interface)\\s+(\\w+)");

    /**
     * The declaration at {@code line} is documented: walking up over its annotations (whose arguments may span lines),
     * the next line closes a Javadoc comment.
     */
    static boolean documented(List<String> lines, int line) {
        int open = 0; // ')' minus '(' seen so far: > 0 while inside an annotation's arguments
        for (int i = line - 1; i >= 0; i--) {
            String l = lines.get(i).strip();
            if (open == 0 && l.endsWith("*/")) {
                for (int j = i; j >= 0; j--) { // find where the comment opens: /** is Javadoc, /* is not
                    String c = lines.get(j).strip();
                    if (c.startsWith("/**")) return true;
                    if (c.startsWith("/*")) return false;
                }
                return false;
            }
            boolean insideArguments = open > 0;
            open += count(l, ')') - count(l, '(');
            if (!insideArguments && open <= 0 && !l.startsWith("@")) return false;
        }
        return false;
    }

    private static int count(String s, char c) {
        return (int) s.chars().filter(x -> x == c).count();
    }

    @Test
    void theCheckTellsDocumentedFromUndocumented() {
        assertTrue(documented(List.of("/** A. */", "public final class A {"), 1));
        assertTrue(documented(List.of("/**", " * A.", " */", "@Command(name = \"a\",", "        description = \"b\")",
                "public final class A {"), 5));
        assertFalse(documented(List.of("import x;", "", "public final class A {"), 2));
        assertFalse(documented(List.of("    int x;", "    public record B(int y) {"), 1));
        assertFalse(documented(List.of("/* not javadoc */", "public class C {"), 1));
        assertTrue(documented(List.of("/** Main. */", "@Command(name = \"aya\",", "        subcommands = {", "                A.class,",
                "        })", "public final class Main {"), 5));
        assertFalse(documented(List.of("}", "@Command(name = \"x\")", "public final class D {"), 2));
    }

    @Test
    void everyPublicTypeHasJavadoc() throws IOException {
        List<String> missing = new ArrayList<>();
        try (Stream<Path> files = Files.walk(Path.of("src/main/java"))) {
            for (Path f : (Iterable<Path>) files.filter(p -> p.toString().endsWith(".java"))::iterator) {
                List<String> lines = Files.readAllLines(f);
                for (int i = 0; i < lines.size(); i++) {
                    Matcher m = PUBLIC_TYPE.matcher(lines.get(i));
                    if (m.find() && !documented(lines, i)) missing.add(f + ":" + (i + 1) + " " + m.group(1));
                }
            }
        }
        assertEquals(List.of(), missing, "public types without a Javadoc comment");
    }
}
