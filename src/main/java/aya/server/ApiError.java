package aya.server;

/**
 * A request the server refuses, answered as OpenAI does: {@code {"error": {"message", "type", "param", "code"}}} with
 * this HTTP status. The message is one line and never a stack trace.
 */
final class ApiError extends RuntimeException {
    final int status;
    final String type;
    final String param; // the request field at fault, or null

    ApiError(int status, String type, String param, String message) {
        super(message, null, false, false);
        this.status = status;
        this.type = type;
        this.param = param;
    }

    /** 400: the request itself is wrong (malformed JSON, a wrong type or value). */
    static ApiError invalid(String param, String message) {
        return new ApiError(400, "invalid_request_error", param, message);
    }
}
