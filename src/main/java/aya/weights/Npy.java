package aya.weights;

import aya.AyaException;
import aya.TempFiles;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** NumPy {@code .npy} (format 1.0) for 2-D little-endian float32 arrays: a streaming atomic writer and a reader. */
public final class Npy {

    private Npy() {
    }

    /**
     * Writes a float32 [rows, cols] array row by row into a temporary file next to {@code target};
     * {@link #commit()} moves it into place atomically, {@link #close()} without commit deletes it.
     */
    public static final class Writer implements AutoCloseable {
        private final Path target;
        private final Path temp;
        private final FileChannel channel;
        private final int cols;
        private final int rows;
        private final ByteBuffer row;
        private int written;
        private boolean committed;

        public Writer(Path target, int rows, int cols) {
            this.target = target.toAbsolutePath();
            this.rows = rows;
            this.cols = cols;
            Path dir = this.target.getParent();
            if (dir == null || !Files.isDirectory(dir)) {
                throw new AyaException(target + ": cannot write: directory " + dir + " does not exist");
            }
            if (Files.isDirectory(this.target)) {
                throw new AyaException(target + ": cannot write: it is a directory");
            }
            try {
                this.temp = TempFiles.create(this.target);
                this.channel = FileChannel.open(temp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING);
                channel.write(ByteBuffer.wrap(header(rows, cols)));
            } catch (IOException e) {
                throw new AyaException(target + ": cannot write: " + e.getMessage());
            }
            this.row = ByteBuffer.allocate(cols * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        }

        /** Appends one row of {@code cols} floats. */
        public void writeRow(MemorySegment values) {
            row.clear();
            for (int i = 0; i < cols; i++) {
                row.putFloat(values.getAtIndex(ValueLayout.JAVA_FLOAT, i));
            }
            row.flip();
            try {
                while (row.hasRemaining()) channel.write(row);
            } catch (IOException e) {
                throw new AyaException(target + ": cannot write: " + e.getMessage());
            }
            written++;
        }

        /** Moves the finished file into place (atomic rename). */
        public void commit() {
            if (written != rows) {
                throw new IllegalStateException("wrote " + written + " of " + rows + " rows");
            }
            try {
                channel.close();
                TempFiles.commit(temp, target);
                committed = true;
            } catch (IOException e) {
                throw new AyaException(target + ": cannot write: " + e.getMessage());
            }
        }

        @Override
        public void close() {
            if (!committed) {
                try {
                    channel.close();
                } catch (IOException ignored) {
                    // best effort: the temp file is deleted anyway
                }
                TempFiles.delete(temp);
            }
        }
    }

    static byte[] header(int rows, int cols) {
        String dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + rows + ", " + cols + "), }";
        int unpadded = 10 + dict.length() + 1; // magic(6) + version(2) + len(2) + dict + '\n'
        int total = (unpadded + 63) / 64 * 64;
        StringBuilder sb = new StringBuilder(dict);
        while (10 + sb.length() + 1 < total) sb.append(' ');
        sb.append('\n');
        byte[] text = sb.toString().getBytes(StandardCharsets.US_ASCII);
        ByteBuffer b = ByteBuffer.allocate(10 + text.length).order(ByteOrder.LITTLE_ENDIAN);
        b.put((byte) 0x93).put("NUMPY".getBytes(StandardCharsets.US_ASCII)).put((byte) 1).put((byte) 0);
        b.putShort((short) text.length).put(text);
        return b.array();
    }

    /** A float32 matrix read back from .npy. */
    public record Matrix(int rows, int cols, float[] data) {
        public float get(int r, int c) {
            return data[r * cols + c];
        }
    }

    private static final Pattern SHAPE = Pattern.compile("'shape':\\s*\\((\\d+),\\s*(\\d+),?\\s*\\)");

    /** Reads a 2-D little-endian float32 C-order .npy file. */
    public static Matrix read(Path file) {
        try {
            byte[] all = Files.readAllBytes(file);
            ByteBuffer b = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN);
            if (all.length < 10 || (all[0] & 0xff) != 0x93 || !new String(all, 1, 5, StandardCharsets.US_ASCII).equals("NUMPY")) {
                throw new AyaException(file + ": not a .npy file");
            }
            int major = all[6];
            int headerLen;
            int start;
            if (major == 1) {
                headerLen = b.getShort(8) & 0xffff;
                start = 10;
            } else {
                headerLen = b.getInt(8);
                start = 12;
            }
            String header = new String(all, start, headerLen, StandardCharsets.ISO_8859_1);
            if (!header.contains("'descr': '<f4'") || header.contains("'fortran_order': True")) {
                throw new AyaException(file + ": expected a little-endian float32 C-order array, header " + header.trim());
            }
            Matcher m = SHAPE.matcher(header);
            if (!m.find()) {
                throw new AyaException(file + ": expected a 2-D array, header " + header.trim());
            }
            int rows = Integer.parseInt(m.group(1)), cols = Integer.parseInt(m.group(2));
            int dataStart = start + headerLen;
            if ((long) rows * cols * 4 != all.length - dataStart) {
                throw new AyaException(file + ": truncated: shape (" + rows + ", " + cols + ") needs " + (long) rows * cols * 4 + " bytes");
            }
            float[] data = new float[rows * cols];
            b.position(dataStart);
            b.asFloatBuffer().get(data);
            return new Matrix(rows, cols, data);
        } catch (IOException e) {
            throw new AyaException(file + ": cannot read: " + e.getMessage());
        }
    }
}
