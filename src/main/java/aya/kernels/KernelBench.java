package aya.kernels;

import java.lang.foreign.Arena;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Supplier;

/**
 * Kernel benchmark: Tiny Aya's matrix shapes and ops, Java backend against native, 1 and 2 threads.
 * Each case warms up, then repeats until {@code seconds} have passed (at least 3 runs) and reports the median.
 * Decode (tokens = 1) is memory-bound: GB/s of weights streamed. Prefill: GFLOP/s.
 *
 * <pre>java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp target/aya.jar aya.kernels.KernelBench
 * [--backends java,native] [--threads 1,2] [--tokens 64] [--type bf16|f16|f32|q8_0|q4_0|q5_0|q4_k|q6_k] [--seconds 1.5] [--shapes all|small]
 * [--activations f32|bf16]</pre>
 */
public final class KernelBench {

    /** out x in, as in the model: q/o, k/v, gate/up, down, and the tied embedding used as the output head. */
    static final int[][] SHAPES = {{2048, 2048}, {512, 2048}, {11008, 2048}, {2048, 11008}, {262144, 2048}};

    /** With --from-memory, the decode cases' copies of a matrix add up to at least this (far beyond any L3 cache). */
    static final long FROM_MEMORY_BYTES = 512L << 20;

    /**
     * What to measure (the command-line flags above).
     *
     * @param backends "java" and/or "native"
     * @param threads  thread counts to try
     * @param tokens   tokens per prefill product
     * @param type     weight type
     * @param seconds  time per measurement
     * @param small    only the small shapes (not the 262144-row head)
     * @param bf16Activations the products round x to bf16 ({@link Kernels#matmulBf16Activations}; bf16 weights only)
     * @param fromMemory decode cases rotate over copies of the matrix totalling at least {@link #FROM_MEMORY_BYTES}, so
     *                   each call reads its weights from memory as the model's decode does (one pass over every layer
     *                   per token); otherwise one matrix is timed again and again and decode reads it from the caches
     */
    public record Options(List<String> backends, List<Integer> threads, int tokens, WeightType type, double seconds,
                          boolean small, boolean bf16Activations, boolean fromMemory) {
        public static Options parse(String... args) {
            List<String> backends = List.of("java", "native");
            List<Integer> threads = List.of(1, 2);
            int tokens = 64;
            WeightType type = WeightType.BF16;
            double seconds = 1.5;
            boolean small = false;
            boolean bf16Activations = false;
            boolean fromMemory = false;
            for (int i = 0; i < args.length; i++) {
                String value = i + 1 < args.length ? args[i + 1] : "";
                switch (args[i]) {
                    case "--backends" -> { backends = List.of(value.split(",")); i++; }
                    case "--threads" -> { threads = List.of(value.split(",")).stream().map(Integer::parseInt).toList(); i++; }
                    case "--tokens" -> { tokens = Integer.parseInt(value); i++; }
                    case "--type" -> { type = WeightType.valueOf(value.toUpperCase(Locale.ROOT)); i++; }
                    case "--seconds" -> { seconds = Double.parseDouble(value); i++; }
                    case "--shapes" -> { small = value.equals("small"); i++; }
                    case "--from-memory" -> fromMemory = true;
                    case "--activations" -> {
                        bf16Activations = switch (value) {
                            case "f32" -> false;
                            case "bf16" -> true;
                            default -> throw new IllegalArgumentException("--activations " + value + ": expected f32 or bf16");
                        };
                        i++;
                    }
                    default -> throw new IllegalArgumentException("unknown option " + args[i]);
                }
            }
            return new Options(backends, threads, tokens, type, seconds, small, bf16Activations, fromMemory);
        }
    }

    public static void main(String[] args) {
        run(Options.parse(args));
    }

    public static void run(Options o) {
        Map<String, Supplier<Kernels>> factories = new LinkedHashMap<>();
        for (String b : o.backends()) {
            factories.put(b, switch (b) {
                case "java" -> JavaKernels::new;
                case "native" -> NativeKernels::load;
                default -> throw new IllegalArgumentException("unknown backend " + b + " (java, native)");
            });
        }
        List<Kernels> backends = new ArrayList<>();
        for (var f : factories.values()) backends.add(f.get());
        if (o.bf16Activations() && o.type() != WeightType.BF16) {
            throw new IllegalArgumentException("bf16 activations need bf16 weights, not " + o.type());
        }
        System.out.printf(Locale.ROOT, "# kernel benchmark: %s weights, %s activations, prefill %d tokens, decode %s, %d cores; backends: %s%n",
                o.type(), o.bf16Activations() ? "bf16" : "f32", o.tokens(),
                o.fromMemory() ? "from memory (copies of each matrix, >= " + (FROM_MEMORY_BYTES >> 20) + " MiB)" : "from the caches (one matrix)",
                Runtime.getRuntime().availableProcessors(),
                String.join(", ", backends.stream().map(Kernels::name).toList()));
        System.out.println("| kernel | shape | threads | " + String.join(" | ", backends.stream().map(Kernels::name).toList())
                + (backends.size() == 2 ? " | speed " + backends.get(1).name() + " / " + backends.get(0).name() + " |" : " |"));
        System.out.println("|---|---|---|" + "---|".repeat(backends.size()) + (backends.size() == 2 ? "---|" : ""));
        SplittableRandom rnd = new SplittableRandom(1);
        try (Arena arena = Arena.ofShared()) {
            // JIT warm-up of every path before anything is timed (the compiler threads compete for the same cores)
            {
                MemorySegment w = randomWeights(arena, o.type(), 512L * 2048, rnd);
                MemorySegment x = randomFloats(arena, (long) o.tokens() * 2048, rnd);
                MemorySegment out = arena.allocate(4L * o.tokens() * 512, 64);
                for (Kernels k : backends) {
                    PackedMatrix packed = pack(k, o, w, 512, 2048);
                    for (int tokens : new int[]{1, o.tokens()}) {
                        time(Math.max(1.0, o.seconds()), () -> matmul(k, o, w, packed, x, out, tokens, 2048, 512, 0, 512));
                    }
                }
            }
            int[][] shapes = o.small() ? new int[][]{{2048, 2048}, {512, 2048}} : SHAPES;
            for (int[] shape : shapes) {
                int rows = shape[0], in = shape[1];
                int copies = o.fromMemory()
                        ? (int) Math.max(1, (FROM_MEMORY_BYTES + o.type().rowBytes(in) * rows - 1) / (o.type().rowBytes(in) * rows))
                        : 1;
                MemorySegment[] ws = new MemorySegment[copies];
                for (int c = 0; c < copies; c++) ws[c] = randomWeights(arena, o.type(), (long) rows * in, rnd);
                MemorySegment x = randomFloats(arena, (long) o.tokens() * in, rnd);
                MemorySegment out = arena.allocate(4L * o.tokens() * rows, 64);
                List<PackedMatrix[]> packed = new ArrayList<>(); // what each backend's model would read (Kernels.pack)
                for (Kernels k : backends) {
                    PackedMatrix[] ps = new PackedMatrix[copies];
                    for (int c = 0; c < copies; c++) ps[c] = pack(k, o, ws[c], rows, in);
                    packed.add(ps);
                }
                for (int tokens : new int[]{1, o.tokens()}) {
                    int rotate = tokens == 1 ? copies : 1; // prefill reuses each weight for every token: one copy
                    for (int threads : o.threads()) {
                        List<double[]> results = new ArrayList<>();
                        for (int kb = 0; kb < backends.size(); kb++) {
                            Kernels k = backends.get(kb);
                            PackedMatrix[] ps = packed.get(kb);
                            PackedMatrix p = ps[0];
                            int[] turn = {0};
                            try (Parallel pool = new Parallel(threads)) {
                                double[] t = time(o.seconds(), () -> {
                                    int c = turn[0]++ % rotate;
                                    pool.forRange(rows, 16, (wk, a, b) -> matmul(k, o, ws[c], ps[c], x, out, tokens, in, rows, a, b));
                                });
                                double s = t[0];
                                double bytes = p != null ? p.byteSize() : o.type().rowBytes(in) * (double) rows;
                                double flops = 2.0 * rows * in * tokens;
                                results.add(new double[]{s, tokens == 1 ? bytes / s / 1e9 : flops / s / 1e9,
                                        threads == 1 ? t[1] : Double.NaN});
                            }
                        }
                        row(tokens == 1 ? "matmul decode" : "matmul prefill " + tokens, rows + "x" + in, threads, results,
                                tokens == 1 ? "GB/s" : "GFLOP/s");
                    }
                }
            }
            // the ops around the products, single-threaded, per call as the model makes it
            int dim = 2048, ffn = 11008, vocab = 262144, heads = 16, kvHeads = 4, headDim = 128, context = 4096;
            MemorySegment hidden = randomFloats(arena, dim, rnd), norm = randomFloats(arena, dim, rnd);
            MemorySegment normOut = arena.allocate(4L * dim, 64);
            MemorySegment gate = randomFloats(arena, ffn, rnd), up = randomFloats(arena, ffn, rnd);
            MemorySegment logits = randomFloats(arena, vocab, rnd), logitsCopy = arena.allocate(4L * vocab, 64);
            MemorySegment q = randomFloats(arena, (long) heads * headDim, rnd);
            MemorySegment kCache = randomFloats(arena, (long) context * kvHeads * headDim, rnd);
            MemorySegment vCache = randomFloats(arena, (long) context * kvHeads * headDim, rnd);
            MemorySegment att = arena.allocate(4L * heads * headDim, 64), scratch = arena.allocate(4L * context, 64);
            float scale = (float) (1 / Math.sqrt(headDim));
            MemorySegment gateCopy = arena.allocate(4L * ffn, 64);
            List<double[]> ln = new ArrayList<>(), sw = new ArrayList<>(), sm = new ArrayList<>(), at = new ArrayList<>();
            for (Kernels k : backends) {
                ln.add(op(time(o.seconds(), () -> k.layerNorm(hidden, norm, normOut, 1, dim, 1e-5f))));
                sw.add(op(time(o.seconds(), () -> {
                    MemorySegment.copy(gate, 0, gateCopy, 0, 4L * ffn);
                    k.swiglu(gateCopy, up, 0, ffn);
                })));
                sm.add(op(time(o.seconds(), () -> {
                    MemorySegment.copy(logits, 0, logitsCopy, 0, 4L * vocab);
                    k.softmax(logitsCopy, vocab);
                })));
                at.add(op(time(o.seconds(), () -> k.attention(q, kCache, vCache, att, 1, context - 1, heads,
                        kvHeads, headDim, context, 0, scale, scratch, 0, heads))));
            }
            row("layerNorm", "2048", 1, ln, null);
            row("swiglu (+copy)", "11008", 1, sw, null);
            row("softmax (+copy)", "262144", 1, sm, null);
            row("attention decode", "16 heads, 4096 keys", 1, at, null);
        } finally {
            for (Kernels k : backends) k.close();
        }
    }

    /** The backend's packed copy of w, as a model on it would read (null: it reads w as is). */
    private static PackedMatrix pack(Kernels k, Options o, MemorySegment w, int rows, int in) {
        if (o.bf16Activations()) return null;
        try (Parallel pool = new Parallel(Runtime.getRuntime().availableProcessors())) {
            return k.pack(o.type(), w, rows, in, pool);
        }
    }

    /**
     * The product being measured: the ordinary matmul (with the backend's packed copy when it made one, as the model
     * does), or with --activations bf16 the bf16-activation one.
     */
    private static void matmul(Kernels k, Options o, MemorySegment w, PackedMatrix packed, MemorySegment x,
                               MemorySegment out, int tokens, int in, int outStride, int rowStart, int rowEnd) {
        if (o.bf16Activations()) k.matmulBf16Activations(w, x, out, tokens, in, outStride, rowStart, rowEnd);
        else if (packed != null) k.matmul(packed, x, out, tokens, outStride, rowStart, rowEnd);
        else k.matmul(o.type(), w, x, out, tokens, in, outStride, rowStart, rowEnd);
    }

    /** An op's result row entry: wall seconds, no rate, CPU seconds. */
    private static double[] op(double[] t) {
        return new double[]{t[0], Double.NaN, t[1]};
    }

    /**
     * One table row. Per backend: median wall time (and rate), plus the calling thread's CPU time when it did all the
     * work (1 thread). The ratio uses CPU time when there is one: it is far less disturbed by other jobs on the machine.
     */
    private static void row(String kernel, String shape, int threads, List<double[]> results, String unit) {
        StringBuilder sb = new StringBuilder(String.format(Locale.ROOT, "| %s | %s | %d |", kernel, shape, threads));
        for (double[] r : results) {
            if (Double.isNaN(r[0])) {
                sb.append(" n/a |");
                continue;
            }
            sb.append(unit == null ? String.format(Locale.ROOT, " %.1f µs", r[0] * 1e6)
                    : String.format(Locale.ROOT, " %.2f ms (%.1f %s)", r[0] * 1e3, r[1], unit));
            if (!Double.isNaN(r[2])) {
                sb.append(unit == null ? String.format(Locale.ROOT, ", cpu %.1f µs", r[2] * 1e6)
                        : String.format(Locale.ROOT, ", cpu %.2f ms", r[2] * 1e3));
            }
            sb.append(" |");
        }
        if (results.size() == 2) {
            double[] a = results.get(0), b = results.get(1);
            boolean cpu = !Double.isNaN(a[2]) && !Double.isNaN(b[2]);
            sb.append(String.format(Locale.ROOT, " %.2fx%s |", cpu ? a[2] / b[2] : a[0] / b[0], cpu ? " (cpu)" : ""));
        }
        System.out.println(sb);
    }

    /**
     * {median wall seconds, median CPU seconds of the calling thread} per run: warm up, then repeat until the budget is
     * spent (3 to 200 timed runs). NaN if the backend does not support the case.
     */
    static double[] time(double budgetSeconds, Runnable body) {
        try {
            // the Java backend needs its kernels JIT-compiled first: at least 0.5 s and 3 runs of warm-up
            long warmEnd = System.nanoTime() + (long) (Math.max(0.5, budgetSeconds * 0.5) * 1e9);
            int warm = 0;
            do { body.run(); warm++; } while (warm < 3 || (System.nanoTime() < warmEnd && warm < 1000));
        } catch (UnsupportedOperationException e) {
            return new double[]{Double.NaN, Double.NaN};
        }
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        List<Long> wall = new ArrayList<>(), cpu = new ArrayList<>();
        long end = System.nanoTime() + (long) (budgetSeconds * 1e9);
        while (wall.size() < 3 || (System.nanoTime() < end && wall.size() < 200)) {
            long c0 = mx.getCurrentThreadCpuTime();
            long t0 = System.nanoTime();
            body.run();
            wall.add(System.nanoTime() - t0);
            cpu.add(mx.getCurrentThreadCpuTime() - c0);
        }
        wall.sort(null);
        cpu.sort(null);
        return new double[]{wall.get(wall.size() / 2) / 1e9, cpu.get(cpu.size() / 2) / 1e9};
    }

    static MemorySegment randomFloats(Arena arena, long n, SplittableRandom rnd) {
        MemorySegment s = arena.allocate(4 * n, 64);
        for (long i = 0; i < n; i++) s.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) rnd.nextDouble(-1, 1));
        return s;
    }

    static MemorySegment randomWeights(Arena arena, WeightType type, long n, SplittableRandom rnd) {
        MemorySegment s = arena.allocate(type.rowBytes(n), 64);
        if (KQuant.handles(type)) { // no quantizer for these (files bring them): random blocks with weight-like scales
            for (long i = 0; i < s.byteSize(); i++) s.set(ValueLayout.JAVA_BYTE, i, (byte) rnd.nextInt(256));
            int[] scaleFields = type == WeightType.Q4_K ? new int[]{0, 2} : type == WeightType.Q6_K ? new int[]{208} : new int[]{0};
            for (long at = 0; at < s.byteSize(); at += type.blockBytes) {
                for (int field : scaleFields) s.set(Quant.U16_LE, at + field, Float.floatToFloat16((float) rnd.nextDouble(-1e-3, 1e-3)));
            }
            return s;
        }
        if (type.quantized()) { // quantized in chunks of 4096 weights, as the loader quantizes rows
            float[] chunk = new float[4096];
            for (long i = 0; i < n; i += chunk.length) {
                int len = (int) Math.min(chunk.length, n - i);
                for (int j = 0; j < len; j++) chunk[j] = (float) rnd.nextDouble(-0.05, 0.05);
                Quant.quantizeRow(type, chunk, 0, len, s, type.rowBytes(i));
            }
            return s;
        }
        for (long i = 0; i < n; i++) {
            float v = (float) rnd.nextDouble(-0.05, 0.05);
            switch (type) {
                case F32 -> s.setAtIndex(ValueLayout.JAVA_FLOAT, i, v);
                case F16 -> s.setAtIndex(ValueLayout.JAVA_SHORT, i, Float.floatToFloat16(v));
                case BF16 -> s.setAtIndex(ValueLayout.JAVA_SHORT, i, (short) (Float.floatToRawIntBits(v) >>> 16));
                default -> throw new IllegalArgumentException("benchmark supports f32, f16, bf16, q8_0, q4_0, q5_0, q4_k, q6_k, not " + type);
            }
        }
        return s;
    }
}
