package aya.generation;

import aya.AyaException;

/** {@link Scheduler#submit} refused a request: its bounded queue is full (a server answers 429/503). */
public final class QueueFullException extends AyaException {
    public QueueFullException(String message) {
        super(message);
    }
}
