package aya.hub;

import aya.AyaException;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Where the cache is and how to reach the hub, read from the same environment variables as huggingface_hub:
 * <ul>
 *   <li>cache: {@code HF_HUB_CACHE}, else {@code HF_HOME/hub}, else {@code $XDG_CACHE_HOME/huggingface/hub},
 *       else {@code ~/.cache/huggingface/hub}</li>
 *   <li>endpoint: {@code HF_ENDPOINT}, else https://huggingface.co</li>
 *   <li>token: {@code HF_TOKEN}, else the file {@code HF_TOKEN_PATH}, else {@code HF_HOME/token}</li>
 *   <li>offline: {@code HF_HUB_OFFLINE} set to 1/true/yes/on</li>
 * </ul>
 *
 * @param cacheDir  the hub cache holding models--Org--Name folders
 * @param endpoint  base URL of the hub, without a trailing slash
 * @param token     access token sent as "Authorization: Bearer" to the endpoint only; null = none
 * @param tokenFile where a token file is looked for (named in error messages)
 * @param offline   never touch the network
 */
public record HubSettings(Path cacheDir, URI endpoint, String token, Path tokenFile, boolean offline) {

    public static final String DEFAULT_ENDPOINT = "https://huggingface.co";

    private static final Set<String> TRUE = Set.of("1", "ON", "YES", "TRUE");

    public static HubSettings fromEnvironment() {
        return fromEnvironment(System.getenv());
    }

    public static HubSettings fromEnvironment(Map<String, String> env) {
        Path home = Path.of(System.getProperty("user.home"));
        Path hfHome = nonEmpty(env.get("HF_HOME")) != null ? expand(env.get("HF_HOME"), home)
                : (nonEmpty(env.get("XDG_CACHE_HOME")) != null ? expand(env.get("XDG_CACHE_HOME"), home)
                        : home.resolve(".cache")).resolve("huggingface");
        Path cache = nonEmpty(env.get("HF_HUB_CACHE")) != null ? expand(env.get("HF_HUB_CACHE"), home)
                : nonEmpty(env.get("HUGGINGFACE_HUB_CACHE")) != null ? expand(env.get("HUGGINGFACE_HUB_CACHE"), home)
                : hfHome.resolve("hub");

        String endpointText = nonEmpty(env.get("HF_ENDPOINT")) != null ? env.get("HF_ENDPOINT").trim() : DEFAULT_ENDPOINT;
        while (endpointText.endsWith("/")) endpointText = endpointText.substring(0, endpointText.length() - 1);
        URI endpoint;
        try {
            endpoint = new URI(endpointText);
        } catch (Exception e) {
            throw new AyaException("HF_ENDPOINT is not a URL: '" + endpointText + "'");
        }
        if (!("http".equals(endpoint.getScheme()) || "https".equals(endpoint.getScheme())) || endpoint.getHost() == null) {
            throw new AyaException("HF_ENDPOINT must be an http(s) URL like https://huggingface.co, got '" + endpointText + "'");
        }

        Path tokenFile = nonEmpty(env.get("HF_TOKEN_PATH")) != null ? expand(env.get("HF_TOKEN_PATH"), home)
                : hfHome.resolve("token");
        String token = nonEmpty(env.get("HF_TOKEN"));
        if (token == null) token = nonEmpty(env.get("HUGGING_FACE_HUB_TOKEN"));
        if (token == null && Files.isRegularFile(tokenFile)) {
            try {
                token = nonEmpty(Files.readString(tokenFile));
            } catch (IOException e) {
                throw new AyaException("cannot read the token file " + tokenFile + ": " + e.getMessage(), e);
            }
        }
        if (token != null && !token.chars().allMatch(c -> c > 32 && c < 127)) {
            throw new AyaException("the Hugging Face token (HF_TOKEN or " + tokenFile + ") holds spaces or non-ASCII characters");
        }

        String offline = env.get("HF_HUB_OFFLINE");
        boolean isOffline = offline != null && TRUE.contains(offline.trim().toUpperCase(Locale.ROOT));
        return new HubSettings(cache, endpoint, token, tokenFile, isOffline);
    }

    private static String nonEmpty(String s) {
        if (s == null) return null;
        s = s.strip();
        return s.isEmpty() ? null : s;
    }

    private static Path expand(String path, Path home) {
        path = path.strip();
        if (path.equals("~")) return home;
        if (path.startsWith("~/")) return home.resolve(path.substring(2));
        return Path.of(path);
    }
}
