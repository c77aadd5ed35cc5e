package aya.kernels;

import aya.AyaException;
import aya.kernels.ffm.aya_kernels_h;

import java.lang.foreign.MemorySegment;

/**
 * Keeps a memory-mapped weight file that shrinks on disk from killing the process (native/src/guard.c). Reading a
 * lost page of a mapping raises SIGBUS: in a C kernel the JVM dies, in Java code it throws InternalError at some
 * later point. With the native library loaded (whatever the backend), a fault inside a watched mapping instead maps
 * zeros over the rest of it and marks it; {@link #faulted} tells, and the checkpoint turns that into a one-line
 * error after the forward step. Without the native library (a platform with no build) {@link #watch} returns -1
 * and nothing is guarded: the Java backend then gets the JVM's InternalError, which the forward pass reports as
 * the file that changed.
 */
public final class MappingGuard {

    private static final boolean AVAILABLE = loadLibrary();

    private MappingGuard() {
    }

    private static boolean loadLibrary() {
        try {
            NativeLibrary.load();
            return true;
        } catch (AyaException | LinkageError e) {
            return false; // no native library: reported by the backend choice, not here
        }
    }

    /** True when mappings are guarded in this process. */
    public static boolean available() {
        return AVAILABLE;
    }

    /**
     * Reads every byte of {@code buf} (size a multiple of 64) through the native read probe, which prefetches ahead
     * like the decode matvec; returns a value that keeps the reads alive. Only when {@link #available()}.
     */
    public static long readProbe(MemorySegment buf) {
        return aya_kernels_h.aya_read_probe(buf, buf.byteSize());
    }

    /** Starts guarding {@code mapping}; returns its slot, or -1 when it cannot be guarded. */
    public static int watch(MemorySegment mapping) {
        if (!AVAILABLE || mapping.byteSize() == 0) return -1;
        return aya_kernels_h.aya_guard_add(mapping, mapping.byteSize());
    }

    /** True once a read of the mapping in {@code slot} hit a page the file no longer has (it now reads zeros). */
    public static boolean faulted(int slot) {
        return slot >= 0 && aya_kernels_h.aya_guard_faulted(slot) != 0;
    }

    /** Stops guarding {@code slot} (call before the mapping is unmapped). */
    public static void unwatch(int slot) {
        if (slot >= 0) aya_kernels_h.aya_guard_remove(slot);
    }
}
