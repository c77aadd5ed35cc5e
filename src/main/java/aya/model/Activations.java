package aya.model;

import aya.AyaException;

import java.util.Locale;

/** The precision of the activations entering the weight-matrix products (aya --activations). */
public enum Activations {
    /** The default: activations stay f32 everywhere. */
    F32,
    /**
     * The activations entering every bf16 weight matrix are rounded to bf16 (round to nearest even), in prefill and in
     * decode alike, as llama.cpp's BF16 path does; products are exact and summed in f32. With AVX512_BF16 this runs on
     * vdpbf16ps, about twice the f32 multiply-adds per instruction (prefill is compute-bound); decode, bound by memory,
     * streams the same weight bytes either way. Elsewhere it only changes the numerics.
     */
    BF16;

    /** The --activations value: "f32" or "bf16" (any case); a one-line error otherwise. */
    public static Activations parse(String text) {
        if (text != null) {
            for (Activations a : values()) {
                if (a.label().equalsIgnoreCase(text.strip())) return a;
            }
        }
        throw new AyaException("--activations '" + text + "': expected f32 or bf16");
    }

    /** "f32" or "bf16", as on the command line and in bench --json. */
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }
}
