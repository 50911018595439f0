// Server-sent events read with fetch + ReadableStream (never EventSource: it cannot send
// the Authorization header). A parser for the text/event-stream format and a reader that
// reconnects with backoff and Last-Event-ID.

/**
 * Incremental text/event-stream parser (the WHATWG format): feed it text chunks, get back
 * complete events {id, event, data}. `id` is null when the event had no id field (presence
 * events); `event` defaults to "message". Comments (heartbeats) and retry fields are skipped.
 */
export class SseParser {
    constructor() {
        this.buffer = '';
        this.reset();
    }

    reset() {
        this.id = null;
        this.event = '';
        this.data = [];
    }

    feed(chunk) {
        this.buffer += chunk;
        const out = [];
        for (;;) {
            const match = /\r\n|\r|\n/.exec(this.buffer);
            if (!match) {
                break;
            }
            // A lone \r at the very end may be half of \r\n: wait for more.
            if (match[0] === '\r' && match.index === this.buffer.length - 1) {
                break;
            }
            const line = this.buffer.slice(0, match.index);
            this.buffer = this.buffer.slice(match.index + match[0].length);
            const event = this.line(line);
            if (event) {
                out.push(event);
            }
        }
        return out;
    }

    line(line) {
        if (line === '') {
            if (this.data.length === 0) {
                this.reset();
                return null;
            }
            const event = { id: this.id, event: this.event || 'message', data: this.data.join('\n') };
            this.reset();
            return event;
        }
        if (line.startsWith(':')) {
            return null;
        }
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) {
            value = value.slice(1);
        }
        if (field === 'data') {
            this.data.push(value);
        } else if (field === 'event') {
            this.event = value;
        } else if (field === 'id' && !value.includes('\0')) {
            this.id = value;
        }
        return null;
    }
}

/** Backoff before reconnect attempt n (0-based): 0.5 s doubling to 15 s, with jitter. */
export function backoffMs(attempt) {
    const base = Math.min(15000, 500 * 2 ** Math.min(attempt, 5));
    return Math.round(base * (0.75 + Math.random() * 0.5));
}

/**
 * Keep an event stream open. options:
 *   open(lastId, signal) → Promise<Response>   (rejects with an error that may be `retryable`)
 *   onEvent({id, event, data})                  called in order, synchronously
 *   onOpen()                                    each time a connection is established
 *   onDown(error)                               each time it is lost (then it reconnects)
 *   onFatal(error)                              a non-retryable error: stops for good
 *   idleMs                                      no byte for this long → reconnect (heartbeats)
 * `lastId` starts at options.lastId (default 0) and follows the ids of received events.
 */
export class EventStreamReader {
    constructor(options) {
        this.options = options;
        this.lastId = options.lastId ?? 0;
        this.stopped = false;
        this.controller = null;
        this.wakeUp = null;
    }

    start() {
        this.run();
        return this;
    }

    stop() {
        this.stopped = true;
        this.controller?.abort();
        this.wakeUp?.();
    }

    /** Reconnect now instead of waiting out the backoff (e.g. when the browser is online). */
    nudge() {
        this.wakeUp?.();
    }

    async run() {
        const { open, onEvent, onOpen, onDown, onFatal, idleMs = 60000 } = this.options;
        let attempt = 0;
        while (!this.stopped) {
            const controller = new AbortController();
            this.controller = controller;
            let idleTimer = null;
            const touch = () => {
                clearTimeout(idleTimer);
                idleTimer = setTimeout(() => controller.abort(), idleMs);
            };
            let failure = null;
            try {
                touch();
                const response = await open(this.lastId, controller.signal);
                attempt = 0;
                onOpen?.();
                const parser = new SseParser();
                const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
                for (;;) {
                    const { value, done } = await reader.read();
                    if (done) {
                        break;
                    }
                    touch();
                    for (const event of parser.feed(value)) {
                        if (event.id !== null && /^\d+$/.test(event.id)) {
                            this.lastId = Number(event.id);
                        }
                        onEvent(event);
                    }
                }
            } catch (e) {
                failure = e;
            } finally {
                clearTimeout(idleTimer);
            }
            if (this.stopped) {
                return;
            }
            if (failure && failure.retryable === false) {
                onFatal?.(failure);
                return;
            }
            onDown?.(failure);
            await new Promise((resolve) => {
                const timer = setTimeout(resolve, backoffMs(attempt));
                this.wakeUp = () => {
                    clearTimeout(timer);
                    resolve();
                };
            });
            this.wakeUp = null;
            attempt += 1;
        }
    }
}
