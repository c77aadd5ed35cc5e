package aya;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.tools.Diagnostic;
import javax.tools.DiagnosticCollector;
import javax.tools.DocumentationTool;
import javax.tools.JavaFileObject;
import javax.tools.ToolProvider;
import java.io.File;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@code mvn javadoc:javadoc} stays warning-free: the same javadoc run as the pom's maven-javadoc-plugin
 * configuration (doclint all but "missing", bindings left out), with any warning or error failing the test.
 */
class JavadocTest {

    @Test
    void javadocHasNoWarnings(@TempDir Path out) {
        DocumentationTool javadoc = ToolProvider.getSystemDocumentationTool();
        // surefire runs the tests from a manifest-only jar: the real class path is in this property
        String classPath = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        List<String> options = List.of("-d", out.toString(), "-quiet", "-Xdoclint:all,-missing", "-Xmaxwarns", "1000",
                "--add-modules", "jdk.incubator.vector", "-classpath", classPath,
                "-sourcepath", "src/main/java" + File.pathSeparator + "bindings/src",
                "-subpackages", "aya", "-exclude", "aya.kernels.ffm");
        DiagnosticCollector<JavaFileObject> diagnostics = new DiagnosticCollector<>();
        StringWriter log = new StringWriter();
        boolean ok = javadoc.getTask(log, null, diagnostics, null, options, null).call();
        List<String> problems = new ArrayList<>();
        for (Diagnostic<? extends JavaFileObject> d : diagnostics.getDiagnostics()) {
            String message = d.getMessage(null);
            if (d.getKind() == Diagnostic.Kind.NOTE || message.contains("incubating module")) continue; // the Vector API notice
            problems.add(d.getKind() + " " + (d.getSource() == null ? "" : d.getSource().getName() + ":" + d.getLineNumber() + " ") + message);
        }
        assertEquals(List.of(), problems, log.toString());
        assertTrue(ok, log.toString());
    }
}
