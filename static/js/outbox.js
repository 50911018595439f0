// Events written but not yet acknowledged, sent one at a time, in order. An item leaves the
// outbox only when the server answered 201 (it committed the event), when the event stream
// already showed it (the 201 was lost on the way), or when the server refused it for good.
// Network errors, 5xx and 429 are retried with backoff (Retry-After wins); coming back
// online retries at once. The caller persists the items (they are sealed, never plaintext).

import { backoffMs } from './sse.js';

/**
 * options:
 *   items            the persisted array of {id, body, afterSeq} (mutated in place)
 *   post(body)       → Promise<{seq}>; rejects with ApiError (has `retryable`, `status`, `code`)
 *   persist()        → Promise: save `items`
 *   onSent(item, seq), onFailed(item, error), onTrouble(item, error|null), onFatal(error)
 */
export class Outbox {
    constructor(options) {
        this.options = options;
        this.items = options.items;
        this.running = false;
        this.stopped = false;
        this.echoed = new Set();
        this.wakeUp = null;
    }

    /** Append an item, persist, then start sending. Resolves once persisted. */
    async add(item) {
        this.items.push(item);
        await this.options.persist();
        this.pump();
    }

    /** The stream showed this item's event: it is stored, whatever the POST said. */
    markEchoed(id) {
        this.echoed.add(id);
        this.wakeUp?.();
    }

    /** Retry now (e.g. the browser came back online). */
    nudge() {
        this.wakeUp?.();
    }

    stop() {
        this.stopped = true;
        this.wakeUp?.();
    }

    async pump() {
        if (this.running) {
            return;
        }
        this.running = true;
        try {
            while (!this.stopped && this.items.length > 0) {
                await this.deliver(this.items[0]);
            }
        } finally {
            this.running = false;
        }
    }

    async finish(item) {
        const index = this.items.indexOf(item);
        if (index >= 0) {
            this.items.splice(index, 1);
        }
        await this.options.persist();
    }

    sleep(ms) {
        return new Promise((resolve) => {
            const timer = setTimeout(resolve, ms);
            this.wakeUp = () => {
                clearTimeout(timer);
                resolve();
            };
        }).finally(() => {
            this.wakeUp = null;
        });
    }

    async deliver(item) {
        const { post, onSent, onFailed, onTrouble, onFatal } = this.options;
        let attempt = 0;
        let uncertain = false; /* an earlier attempt may have reached the server */
        while (!this.stopped) {
            if (this.echoed.has(item.id)) {
                await this.finish(item);
                onSent?.(item, null);
                return;
            }
            try {
                const result = await post(item.body);
                await this.finish(item);
                onSent?.(item, result?.seq ?? null);
                return;
            } catch (error) {
                if (this.stopped) {
                    return;
                }
                if (error?.retryable) {
                    uncertain = uncertain || error.status === 0 || error.status >= 500;
                    onTrouble?.(item, error);
                    const waitMs = error.retryAfter !== null && error.retryAfter !== undefined
                        ? error.retryAfter * 1000 : backoffMs(attempt);
                    attempt += 1;
                    await this.sleep(waitMs);
                    continue;
                }
                if (error?.code === 'already_sent') {
                    await this.finish(item);
                    onSent?.(item, null);
                    return;
                }
                if (error?.status === 401 || error?.status === 404 || error?.status === 410) {
                    this.stop();
                    onFatal?.(error);
                    return;
                }
                if (uncertain && error?.status === 409) {
                    /* Refused now, but the earlier try may have been stored: the stream
                     * will show it. Give it a moment before calling it a failure. */
                    for (let i = 0; i < 12 && !this.echoed.has(item.id); i++) {
                        await this.sleep(250);
                    }
                    if (this.echoed.has(item.id)) {
                        continue;
                    }
                }
                await this.finish(item);
                onFailed?.(item, error);
                return;
            }
        }
    }
}
