package aya;

/**
 * An error the user can fix (bad file, bad flag, bad input): the CLI prints its one-line message and
 * exits with code 2, without a stack trace unless --verbose. Messages name the file/tensor/value and the problem.
 */
public class AyaException extends RuntimeException {
    public AyaException(String message) {
        super(message);
    }

    public AyaException(String message, Throwable cause) {
        super(message, cause);
    }
}
