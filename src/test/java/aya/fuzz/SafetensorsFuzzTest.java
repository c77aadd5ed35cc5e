package aya.fuzz;

import aya.weights.SafetensorsFile;
import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Fuzzes the safetensors reader (u64 header length, JSON header, data section). An input starting with 'F' is
 * "framed": the rest up to the first NUL byte is the header and the rest the data, and the length prefix is made
 * to match, so mutations reach the header checks instead of dying at the length check. Other inputs are whole files.
 */
class SafetensorsFuzzTest {

    static Path dir;

    @BeforeAll
    static void makeDir() {
        dir = FuzzSupport.scratchDir("safetensors");
    }

    @AfterAll
    static void removeDir() {
        FuzzSupport.deleteTree(dir);
    }

    @FuzzTest(maxDuration = "10s")
    @DictionaryEntries({"\"dtype\"", "\"shape\"", "\"data_offsets\"", "\"__metadata__\"", "\"F32\"", "\"BF16\"", "\"F16\"",
            "\"I64\"", "\"F8_E4M3\"", "9223372036854775807", "18446744073709551615", "-1", "1e308", "[]", "{}"})
    void header(byte[] input) {
        Path file = dir.resolve("fuzz.safetensors");
        FuzzSupport.write(file, fileBytes(input));
        FuzzSupport.onlyUserErrors(() -> {
            try (Arena arena = Arena.ofShared()) {
                SafetensorsFile f = SafetensorsFile.open(file, arena);
                // every tensor the reader accepted must lie inside the file: touch its first and last byte
                for (var t : f.tensors().values()) {
                    long n = t.data().byteSize();
                    if (n > 0) {
                        t.data().get(java.lang.foreign.ValueLayout.JAVA_BYTE, 0);
                        t.data().get(java.lang.foreign.ValueLayout.JAVA_BYTE, n - 1);
                    }
                }
            }
        });
    }

    static byte[] fileBytes(byte[] input) {
        if (input.length == 0 || input[0] != 'F') {
            return input;
        }
        int nul = 1;
        while (nul < input.length && input[nul] != 0) nul++;
        byte[] header = Arrays.copyOfRange(input, 1, nul);
        byte[] data = nul < input.length ? Arrays.copyOfRange(input, nul + 1, input.length) : new byte[0];
        return ByteBuffer.allocate(8 + header.length + data.length).order(ByteOrder.LITTLE_ENDIAN)
                .putLong(header.length).put(header).put(data).array();
    }
}
