package aya.generation;

import aya.AyaException;

/** {@link Scheduler#submit} refused a request: every slot is busy and the waiting queue is full (a server's 503/429). */
public final class QueueFullException extends AyaException {
    public QueueFullException(String message) {
        super(message);
    }
}
