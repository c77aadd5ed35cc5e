package aya.hub;

import aya.AyaException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class HubSettingsTest {

    private static final Path HOME = Path.of(System.getProperty("user.home"));

    @Test
    void cacheDirFollowsHuggingfaceHubsPrecedence() {
        assertEquals(HOME.resolve(".cache/huggingface/hub"), HubSettings.fromEnvironment(Map.of()).cacheDir());
        assertEquals(Path.of("/x/huggingface/hub"), HubSettings.fromEnvironment(Map.of("XDG_CACHE_HOME", "/x")).cacheDir());
        assertEquals(Path.of("/h/hub"), HubSettings.fromEnvironment(Map.of("HF_HOME", "/h", "XDG_CACHE_HOME", "/x")).cacheDir());
        assertEquals(Path.of("/c"), HubSettings.fromEnvironment(Map.of("HF_HUB_CACHE", "/c", "HF_HOME", "/h")).cacheDir());
        assertEquals(HOME.resolve("models"), HubSettings.fromEnvironment(Map.of("HF_HUB_CACHE", "~/models")).cacheDir());
    }

    @Test
    void endpointDefaultsToTheHubAndLosesTrailingSlashes() {
        assertEquals(URI.create("https://huggingface.co"), HubSettings.fromEnvironment(Map.of()).endpoint());
        assertEquals(URI.create("http://127.0.0.1:8080/mirror"),
                HubSettings.fromEnvironment(Map.of("HF_ENDPOINT", "http://127.0.0.1:8080/mirror/")).endpoint());
        AyaException e = assertThrows(AyaException.class, () -> HubSettings.fromEnvironment(Map.of("HF_ENDPOINT", "ftp://x")));
        assertTrue(e.getMessage().contains("HF_ENDPOINT"));
    }

    @Test
    void tokenComesFromHfTokenElseTheTokenFile(@TempDir Path home) throws Exception {
        Files.writeString(home.resolve("token"), "hf_fromfile\n");
        assertEquals("hf_env", HubSettings.fromEnvironment(Map.of("HF_TOKEN", "hf_env", "HF_HOME", home.toString())).token());
        assertEquals("hf_fromfile", HubSettings.fromEnvironment(Map.of("HF_HOME", home.toString())).token());
        assertEquals(home.resolve("token"), HubSettings.fromEnvironment(Map.of("HF_HOME", home.toString())).tokenFile());
        assertNull(HubSettings.fromEnvironment(Map.of("HF_HOME", home.resolve("none").toString())).token());
        assertThrows(AyaException.class, () -> HubSettings.fromEnvironment(Map.of("HF_TOKEN", "hf bad")));
    }

    @Test
    void offlineAcceptsTheSameWordsAsHuggingfaceHub() {
        for (String on : new String[] {"1", "true", "YES", "on"}) {
            assertTrue(HubSettings.fromEnvironment(Map.of("HF_HUB_OFFLINE", on)).offline(), on);
        }
        for (String off : new String[] {"0", "false", "", "no"}) {
            assertFalse(HubSettings.fromEnvironment(Map.of("HF_HUB_OFFLINE", off)).offline(), off);
        }
    }
}
