package aya.tokenizer;

import aya.AyaException;
import com.fasterxml.jackson.databind.JsonNode;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The BPE model of tokenizer.json: a word becomes one symbol per char, then the pair with the lowest merge
 * rank is merged (leftmost first on ties) until no pair has a rank, exactly as HF's BPE::merge_word.
 * Pairs are found with a min-heap of (rank, position) over a doubly linked list of symbols, so long words
 * stay O(n log n); results for frequent words are cached.
 */
final class Bpe {
    private static final int CACHE_LIMIT = 200_000;

    final Map<String, Integer> vocab;
    /** Merge table: pair (left id, right id) → rank and merged id. */
    private final PairMap merges;
    /** SINGLE_CHAR[c] = id of the one-char token c (or -1), for fast initial symbols. */
    private final int[] singleChar = new int[0x10000];
    private final int unkId;
    private final boolean fuseUnk;
    private final boolean byteFallback;
    private final boolean ignoreMerges;
    private final String prefix;
    private final String suffix;
    private final int[] byteFallbackIds = new int[256];
    private final Map<String, int[]> cache = new ConcurrentHashMap<>();

    /**
     * @param json   the model's settings (everything but vocab and merges)
     * @param vocab  token → id
     * @param mergeList the merges in rank order, each {left, right}
     */
    Bpe(JsonNode json, Map<String, Integer> vocab, List<String[]> mergeList) {
        this.vocab = vocab;
        prefix = textOrNull(json, "continuing_subword_prefix");
        suffix = textOrNull(json, "end_of_word_suffix");
        String unk = textOrNull(json, "unk_token");
        Integer u = unk == null ? null : vocab.get(unk);
        unkId = u == null ? -1 : u;
        fuseUnk = json.path("fuse_unk").asBoolean(false);
        byteFallback = json.path("byte_fallback").asBoolean(false);
        ignoreMerges = json.path("ignore_merges").asBoolean(false);
        if (json.hasNonNull("dropout") && json.get("dropout").asDouble() > 0) {
            throw new AyaException("BPE dropout is not supported (dropout=" + json.get("dropout") + ")");
        }

        Arrays.fill(singleChar, -1);
        for (Map.Entry<String, Integer> e : vocab.entrySet()) {
            String k = e.getKey();
            if (k.length() == 1) singleChar[k.charAt(0)] = e.getValue();
        }
        for (int b = 0; b < 256; b++) {
            Integer id = vocab.get(String.format("<0x%02X>", b));
            byteFallbackIds[b] = id == null ? -1 : id;
        }

        merges = new PairMap(Math.max(16, mergeList.size() * 2));
        for (int rank = 0; rank < mergeList.size(); rank++) {
            String left = mergeList.get(rank)[0];
            String right = mergeList.get(rank)[1];
            Integer a = vocab.get(left);
            Integer b = vocab.get(right);
            String merged = left + (prefix != null && right.startsWith(prefix) ? right.substring(prefix.length()) : right);
            Integer c = vocab.get(merged);
            if (a == null || b == null || c == null) {
                throw new AyaException("BPE merge #" + rank + " '" + left + " " + right + "' uses a token missing from the vocab");
            }
            merges.put(a, b, rank, c);
        }
    }

    private static String textOrNull(JsonNode json, String field) {
        JsonNode v = json.get(field);
        return v == null || v.isNull() ? null : v.asText();
    }

    /** The ids of one pre-tokenized word. */
    int[] tokenize(String word) {
        if (word.isEmpty()) return new int[0];
        int[] cached = cache.get(word);
        if (cached != null) return cached;
        int[] ids = tokenizeUncached(word);
        if (cache.size() >= CACHE_LIMIT) cache.clear();
        cache.put(word, ids);
        return ids;
    }

    private int[] tokenizeUncached(String word) {
        if (ignoreMerges) {
            Integer whole = vocab.get(word);
            if (whole != null) return new int[]{whole};
        }
        // Initial symbols: one per code point (with prefix/suffix), byte fallback, or unk.
        int[] ids = new int[word.length() * 4 + 2];
        int n = 0;
        int pendingUnk = -1;
        boolean simple = prefix == null && suffix == null;
        for (int i = 0; i < word.length(); ) {
            int cp = word.codePointAt(i);
            int next = i + Character.charCount(cp);
            int id = -1;
            String symbol = null;
            if (simple && cp < 0x10000) {
                id = singleChar[cp];
            } else {
                symbol = word.substring(i, next);
                if (prefix != null && i > 0) symbol = prefix + symbol;
                if (suffix != null && next == word.length()) symbol = symbol + suffix;
                Integer v = vocab.get(symbol);
                if (v != null) id = v;
            }
            if (id >= 0) {
                if (pendingUnk >= 0) {
                    ids[n++] = pendingUnk;
                    pendingUnk = -1;
                }
                ids[n++] = id;
            } else {
                if (symbol == null) symbol = word.substring(i, next);
                boolean done = false;
                if (byteFallback) {
                    byte[] bytes = symbol.getBytes(StandardCharsets.UTF_8);
                    boolean all = true;
                    for (byte b : bytes) all &= byteFallbackIds[b & 0xFF] >= 0;
                    if (all) {
                        if (n + bytes.length > ids.length) ids = Arrays.copyOf(ids, (n + bytes.length) * 2);
                        for (byte b : bytes) ids[n++] = byteFallbackIds[b & 0xFF];
                        done = true;
                    }
                }
                if (!done && unkId >= 0) {
                    if (pendingUnk >= 0 && !fuseUnk) ids[n++] = pendingUnk;
                    pendingUnk = unkId;
                }
            }
            i = next;
        }
        if (pendingUnk >= 0) ids[n++] = pendingUnk;
        return merge(ids, n);
    }

    /** Applies merges by rank (then leftmost) until none applies; returns the final ids. */
    private int[] merge(int[] ids, int n) {
        if (n < 2) return Arrays.copyOf(ids, n);
        int[] next = new int[n];
        int[] prev = new int[n];
        for (int i = 0; i < n; i++) {
            next[i] = i + 1 < n ? i + 1 : -1;
            prev[i] = i - 1;
        }
        // Heap entries: rank << 32 | position; the smallest wins, so ties go to the leftmost position.
        long[] heap = new long[n * 2 + 4];
        int heapSize = 0;
        for (int i = 0; i + 1 < n; i++) {
            long r = merges.rank(ids[i], ids[i + 1]);
            if (r >= 0) heapSize = push(heap, heapSize, r << 32 | i);
        }
        while (heapSize > 0) {
            long top = heap[0];
            heapSize = pop(heap, heapSize);
            int pos = (int) top;
            int rank = (int) (top >>> 32);
            if (ids[pos] < 0) continue;                       // symbol already merged away
            int right = next[pos];
            if (right < 0) continue;
            long current = merges.rank(ids[pos], ids[right]);
            if (current != rank) continue;                    // stale entry: the pair changed
            ids[pos] = merges.mergedId(ids[pos], ids[right]);
            ids[right] = -1;
            int after = next[right];
            next[pos] = after;
            if (after >= 0) prev[after] = pos;
            if (heapSize + 2 > heap.length) heap = Arrays.copyOf(heap, heap.length * 2);
            int before = prev[pos];
            if (before >= 0) {
                long r = merges.rank(ids[before], ids[pos]);
                if (r >= 0) heapSize = push(heap, heapSize, r << 32 | before);
            }
            if (after >= 0) {
                long r = merges.rank(ids[pos], ids[after]);
                if (r >= 0) heapSize = push(heap, heapSize, r << 32 | pos);
            }
        }
        int count = 0;
        for (int i = 0; i >= 0; i = next[i]) count++;
        int[] out = new int[count];
        int k = 0;
        for (int i = 0; i >= 0; i = next[i]) out[k++] = ids[i];
        return out;
    }

    private static int push(long[] heap, int size, long value) {
        int i = size;
        heap[i] = value;
        while (i > 0) {
            int parent = (i - 1) >>> 1;
            if (heap[parent] <= heap[i]) break;
            long t = heap[parent];
            heap[parent] = heap[i];
            heap[i] = t;
            i = parent;
        }
        return size + 1;
    }

    private static int pop(long[] heap, int size) {
        size--;
        heap[0] = heap[size];
        int i = 0;
        while (true) {
            int l = 2 * i + 1;
            if (l >= size) break;
            int smallest = l + 1 < size && heap[l + 1] < heap[l] ? l + 1 : l;
            if (heap[i] <= heap[smallest]) break;
            long t = heap[i];
            heap[i] = heap[smallest];
            heap[smallest] = t;
            i = smallest;
        }
        return size;
    }

    /** Open-addressing map from an id pair to (rank, merged id); a repeated pair keeps its last rank, like HF's map. */
    private static final class PairMap {
        private final long[] keys;
        private final int[] ranks;
        private final int[] mergedIds;
        private final int mask;

        PairMap(int expected) {
            int cap = Integer.highestOneBit(Math.max(16, expected) * 2);
            keys = new long[cap];
            Arrays.fill(keys, -1L);
            ranks = new int[cap];
            mergedIds = new int[cap];
            mask = cap - 1;
        }

        private int slot(long key) {
            long h = key * 0x9E3779B97F4A7C15L;
            int i = (int) (h >>> 40) & mask;
            while (keys[i] != -1L && keys[i] != key) i = (i + 1) & mask;
            return i;
        }

        void put(int a, int b, int rank, int merged) {
            long key = (long) a << 32 | (b & 0xFFFFFFFFL);
            int i = slot(key);
            keys[i] = key;
            ranks[i] = rank;
            mergedIds[i] = merged;
        }

        long rank(int a, int b) {
            long key = (long) a << 32 | (b & 0xFFFFFFFFL);
            int i = slot(key);
            return keys[i] == key ? ranks[i] : -1;
        }

        int mergedId(int a, int b) {
            return mergedIds[slot((long) a << 32 | (b & 0xFFFFFFFFL))];
        }
    }
}
