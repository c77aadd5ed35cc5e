package aya.server;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The decode rate bench-serve reports, on hand-made token arrival times (nanoseconds). */
class ServeBenchTest {

    private static ServeBench.Stream1 stream(long... times) {
        return new ServeBench.Stream1(0, times[0], times[times.length - 1], times.length, times);
    }

    @Test
    void countsTokensWhileEveryStreamDecodes() {
        // all decode from 5 (second stream's first token) to 30 (first stream's last): 10, 20, 30 and 15, 25 fall in it
        double rate = ServeBench.decodeRate(List.of(stream(0, 10, 20, 30), stream(5, 15, 25, 35)));
        assertEquals(5 / 25e-9, rate, 1e-3);
        // one stream: its tokens after the first over the time since the first
        assertEquals(3 / 30e-9, ServeBench.decodeRate(List.of(stream(0, 10, 20, 30))), 1e-3);
    }

    @Test
    void undefinedWhenStreamsNeverDecodeTogether() {
        assertTrue(Double.isNaN(ServeBench.decodeRate(List.of(stream(0, 10), stream(20, 30)))));
        assertTrue(Double.isNaN(ServeBench.decodeRate(List.of(stream(0, 10), stream(5)))), "a stream of one token");
    }
}
