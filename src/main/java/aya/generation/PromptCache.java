package aya.generation;

import aya.model.AyaForward;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedList;
import java.util.List;

/**
 * KV states of finished requests kept for the next request that starts with the same tokens (a chat client resends
 * the whole conversation each turn): least recently used first out, within a byte budget counting each whole state
 * (its {@link AyaForward.State#byteSize()}). Used by the scheduler thread only.
 */
final class PromptCache {

    /** A cached state and the ids its KV cache holds, [0, state.position()). */
    record Entry(int[] ids, AyaForward.State state) {
    }

    private final long budgetBytes;
    private final LinkedList<Entry> entries = new LinkedList<>(); // least recently used first
    private long bytes;

    PromptCache(long budgetBytes) {
        this.budgetBytes = budgetBytes;
    }

    /**
     * Removes and returns the entry sharing the longest prefix with {@code prompt}, or null when none shares a
     * token. At most prompt.length - 1 tokens count: the last prompt token is always fed, its logits are needed.
     */
    Entry take(int[] prompt) {
        Entry best = null;
        int bestCommon = 0;
        for (Entry e : entries) {
            int common = commonPrefix(e.ids(), prompt, prompt.length - 1);
            if (common > bestCommon) {
                best = e;
                bestCommon = common;
            }
        }
        if (best == null) return null;
        entries.remove(best);
        bytes -= best.state().byteSize();
        return best;
    }

    /**
     * Keeps {@code state} (holding {@code ids}) as the most recently used entry and returns the states that no longer
     * fit the budget, oldest first (the caller reuses or frees them); a state bigger than the whole budget is
     * returned at once.
     */
    List<AyaForward.State> put(int[] ids, AyaForward.State state) {
        List<AyaForward.State> evicted = new ArrayList<>();
        if (state.byteSize() > budgetBytes) {
            evicted.add(state);
            return evicted;
        }
        entries.addLast(new Entry(ids, state));
        bytes += state.byteSize();
        Iterator<Entry> oldest = entries.iterator();
        while (bytes > budgetBytes) {
            Entry e = oldest.next();
            oldest.remove();
            bytes -= e.state().byteSize();
            evicted.add(e.state());
        }
        return evicted;
    }

    /** Removes every entry and returns their states (to be freed). */
    List<AyaForward.State> clear() {
        List<AyaForward.State> all = new ArrayList<>();
        for (Entry e : entries) all.add(e.state());
        entries.clear();
        bytes = 0;
        return all;
    }

    int size() {
        return entries.size();
    }

    long bytes() {
        return bytes;
    }

    /** Length of the common prefix of a and b, at most limit. */
    static int commonPrefix(int[] a, int[] b, int limit) {
        int n = Math.min(limit, Math.min(a.length, b.length));
        int i = 0;
        while (i < n && a[i] == b[i]) i++;
        return i;
    }
}
