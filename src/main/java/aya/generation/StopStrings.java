package aya.generation;

import java.util.List;

/**
 * Stop strings over streamed text: text that might be the start of a stop string is held back until it is
 * resolved, so a stop string is never printed, not even in part. Generation stops when the text made so far
 * contains one of them; the text before it is the output.
 */
public final class StopStrings {

    private final List<String> stops;
    private final StringBuilder pending = new StringBuilder(); // text held back: a possible stop-string prefix
    private boolean stopped;

    public StopStrings(List<String> stops) {
        for (String s : stops) {
            if (s.isEmpty()) throw new IllegalArgumentException("a stop string cannot be empty");
        }
        this.stops = List.copyOf(stops);
    }

    /** Adds new text; returns what can be shown now. After a stop string appears it returns "" forever. */
    public String push(String text) {
        if (stopped) return "";
        pending.append(text);
        int first = -1;
        for (String s : stops) {
            int at = pending.indexOf(s);
            if (at >= 0 && (first < 0 || at < first)) first = at;
        }
        if (first >= 0) {
            stopped = true;
            String out = pending.substring(0, first);
            pending.setLength(0);
            return out;
        }
        // Hold back the longest suffix of pending that is a proper prefix of a stop string.
        String p = pending.toString();
        int hold = 0;
        for (String s : stops) {
            for (int n = Math.min(s.length() - 1, p.length()); n > hold; n--) {
                if (p.regionMatches(p.length() - n, s, 0, n)) {
                    hold = n;
                    break;
                }
            }
        }
        String out = pending.substring(0, pending.length() - hold);
        pending.delete(0, pending.length() - hold);
        return out;
    }

    /** True once a stop string has appeared. */
    public boolean stopped() {
        return stopped;
    }

    /** At the end of generation: the held-back text was not a stop string after all. */
    public String finish() {
        String out = stopped ? "" : pending.toString();
        pending.setLength(0);
        return out;
    }
}
