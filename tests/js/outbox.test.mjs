// Tests of static/js/outbox.js: order, persistence, retries and their waits, echoes from the
// stream, and the refusals that end an item or the whole outbox. The waits are recorded
// (and made instant) rather than slept.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { Outbox } from '../../static/js/outbox.js';

class HttpError extends Error {
    constructor(status, { code = null, retryable = false, retryAfter = null } = {}) {
        super(`HTTP ${status} ${code ?? ''}`);
        Object.assign(this, { status, code, retryable, retryAfter });
    }
}

const item = (id) => ({ id, body: { type: 'note', n: id }, afterSeq: 0 });

/**
 * An outbox whose post() answers from `answers` (a function of the body and the attempt
 * number, returning a value or throwing), recording every call and callback in `log`.
 */
function harness(answers, { items = [], callbacks = true } = {}) {
    const log = [];
    const waits = [];
    let attempts = 0;
    const options = {
        items,
        post: async (body) => {
            attempts += 1;
            log.push(['post', body.n]);
            return answers(body, attempts);
        },
        persist: async () => {
            log.push(['persist', items.map((i) => i.id).join(',')]);
        },
    };
    if (callbacks) {
        Object.assign(options, {
            onSent: (it, seq) => log.push(['sent', it.id, seq]),
            onFailed: (it, error) => log.push(['failed', it.id, error?.code ?? error]),
            onTrouble: (it, error) => log.push(['trouble', it.id, error.status]),
            onFatal: (error) => log.push(['fatal', error.status]),
        });
    }
    const outbox = new Outbox(options);
    const realSleep = outbox.sleep.bind(outbox);
    outbox.sleep = (ms) => {
        waits.push(ms);
        return realSleep(0);
    };
    return { outbox, log, waits, items, attempts: () => attempts };
}

/** Wait until the outbox has nothing left to do (or stopped). */
async function settle(outbox) {
    for (let i = 0; i < 200 && (outbox.running || (outbox.items.length && !outbox.stopped)); i++) {
        await new Promise((r) => setTimeout(r, 1));
    }
    assert.equal(outbox.running, false, 'the outbox went idle');
}

describe('sending', () => {
    test('add persists first, then sends; a 201 removes the item and persists again', async () => {
        const { outbox, log, items } = harness((body) => ({ seq: 10 + body.n }));
        await outbox.add(item(1));
        await settle(outbox);
        assert.deepEqual(log, [['persist', '1'], ['post', 1], ['persist', ''], ['sent', 1, 11]]);
        assert.equal(items.length, 0);
    });

    test('items go one at a time, in order, and a second pump does not send twice', async () => {
        let release;
        const gate = new Promise((r) => {
            release = r;
        });
        const { outbox, log } = harness(async (body) => {
            if (body.n === 1) {
                await gate;
            }
            return { seq: body.n };
        }, { items: [item(1), item(2), item(3)] });
        outbox.pump();
        outbox.pump();
        await new Promise((r) => setTimeout(r, 5));
        assert.deepEqual(log.filter(([k]) => k === 'post'), [['post', 1]]);
        release();
        await settle(outbox);
        assert.deepEqual(log.filter(([k]) => k === 'post' || k === 'sent'), [
            ['post', 1], ['sent', 1, 1], ['post', 2], ['sent', 2, 2], ['post', 3], ['sent', 3, 3],
        ]);
    });

    test('a reply without a seq is sent with seq null', async () => {
        const { outbox, log } = harness(() => undefined, { items: [item(1)] });
        await outbox.pump();
        assert.deepEqual(log.at(-1), ['sent', 1, null]);
    });

    test('works without any callbacks', async () => {
        let n = 0;
        const { outbox, items } = harness(() => {
            n += 1;
            if (n === 1) {
                throw new HttpError(503, { retryable: true });
            }
            if (n === 2) {
                throw new HttpError(409, { code: 'wrong_step' });
            }
            if (n === 3) {
                throw new HttpError(409, { code: 'already_sent' });
            }
            return { seq: 1 };
        }, { items: [item(1), item(2), item(3)], callbacks: false });
        outbox.markEchoed(3);
        await outbox.pump();
        assert.equal(items.length, 0);
        const fatal = harness(() => {
            throw new HttpError(401);
        }, { items: [item(4)], callbacks: false });
        await fatal.outbox.pump();
        assert.equal(fatal.outbox.stopped, true);
    });

    test('an item removed from the list meanwhile leaves the others in place', async () => {
        const items = [item(1), item(2)];
        const { outbox, log } = harness((body) => {
            if (body.n === 1) {
                items.splice(0, 1);
            }
            return { seq: body.n };
        }, { items });
        await outbox.pump();
        assert.deepEqual(log.filter(([k]) => k === 'sent'), [['sent', 1, 1], ['sent', 2, 2]]);
    });
});

describe('retries', () => {
    test('network errors, 5xx and 429 are retried with growing backoff', async () => {
        const failures = [new HttpError(0, { retryable: true }),
            new HttpError(503, { retryable: true }), new HttpError(429, { retryable: true }),
            new HttpError(500, { retryable: true }), new HttpError(502, { retryable: true }),
            new HttpError(504, { retryable: true }), new HttpError(503, { retryable: true })];
        const { outbox, log, waits } = harness((body, attempt) => {
            if (attempt <= failures.length) {
                throw failures[attempt - 1];
            }
            return { seq: 5 };
        }, { items: [item(1)] });
        await outbox.pump();
        assert.deepEqual(log.filter(([k]) => k === 'trouble').map(([, , s]) => s),
            [0, 503, 429, 500, 502, 504, 503]);
        assert.deepEqual(log.at(-1), ['sent', 1, 5]);
        const bases = [500, 1000, 2000, 4000, 8000, 15000, 15000];
        assert.equal(waits.length, bases.length);
        waits.forEach((ms, i) => {
            assert.ok(ms >= bases[i] * 0.75 && ms <= bases[i] * 1.25,
                `wait ${i} is ${ms}, around ${bases[i]}`);
        });
    });

    test('Retry-After wins over the backoff, even when it is 0', async () => {
        const { outbox, waits } = harness((body, attempt) => {
            if (attempt === 1) {
                throw new HttpError(429, { retryable: true, retryAfter: 3 });
            }
            if (attempt === 2) {
                throw new HttpError(503, { retryable: true, retryAfter: 0 });
            }
            if (attempt === 3) {
                throw new HttpError(503, { retryable: true, retryAfter: undefined });
            }
            return { seq: 1 };
        }, { items: [item(1)] });
        await outbox.pump();
        assert.equal(waits[0], 3000);
        assert.equal(waits[1], 0);
        assert.ok(waits[2] >= 1500 && waits[2] <= 2500, `third wait ${waits[2]}: backoff(2)`);
    });

    test('an echo while waiting ends the wait and the item, without another post', async () => {
        const { outbox, log } = harness(() => {
            throw new HttpError(503, { retryable: true });
        }, { items: [item(1)] });
        outbox.sleep = (ms) => {
            log.push(['sleep', ms > 0]);
            return new Promise((resolve) => {
                outbox.wakeUp = resolve;
                setTimeout(() => outbox.markEchoed(1), 2);
            });
        };
        await outbox.pump();
        assert.deepEqual(log, [['post', 1], ['trouble', 1, 503], ['sleep', true],
            ['persist', ''], ['sent', 1, null]]);
    });

    test('nudge() and stop() wake a sleeping outbox', async () => {
        for (const wake of ['nudge', 'stop']) {
            let n = 0;
            const outbox = new Outbox({
                items: [item(1)],
                post: async () => {
                    n += 1;
                    if (n === 1) {
                        throw new HttpError(0, { retryable: true, retryAfter: 60 });
                    }
                    return { seq: 1 };
                },
                persist: async () => {},
            });
            const done = outbox.pump();
            await new Promise((r) => setTimeout(r, 5));
            assert.equal(typeof outbox.wakeUp, 'function', 'sleeping on the 60 s Retry-After');
            const started = Date.now();
            outbox[wake]();
            await done;
            assert.ok(Date.now() - started < 1000, `${wake} woke it at once`);
            assert.equal(outbox.wakeUp, null);
            assert.equal(n, wake === 'nudge' ? 2 : 1);
            assert.equal(outbox.items.length, wake === 'nudge' ? 0 : 1);
        }
    });
});

describe('refusals', () => {
    test('already_sent counts as sent', async () => {
        const { outbox, log, items } = harness(() => {
            throw new HttpError(409, { code: 'already_sent' });
        }, { items: [item(1)] });
        await outbox.pump();
        assert.deepEqual(log.slice(-2), [['persist', ''], ['sent', 1, null]]);
        assert.equal(items.length, 0);
    });

    for (const status of [401, 404, 410]) {
        test(`${status} stops everything and keeps the item`, async () => {
            const { outbox, log, items } = harness(() => {
                throw new HttpError(status, { code: 'x' });
            }, { items: [item(1), item(2)] });
            await outbox.pump();
            assert.deepEqual(log, [['post', 1], ['fatal', status]]);
            assert.equal(outbox.stopped, true);
            assert.deepEqual(items.map((i) => i.id), [1, 2]);
            await outbox.add(item(3));
            assert.equal(log.filter(([k]) => k === 'post').length, 1, 'nothing sent after');
        });
    }

    for (const [what, error] of [['a 409', new HttpError(409, { code: 'wrong_step' })],
        ['a 400', new HttpError(400, { code: 'invalid_event' })],
        ['a 403', new HttpError(403, { code: 'forbidden' })],
        ['an error without a status', new Error('boom')], ['null', null]]) {
        test(`${what} fails the item at once and goes on with the next`, async () => {
            const { outbox, log, items, waits } = harness((body) => {
                if (body.n === 1) {
                    throw error;
                }
                return { seq: 2 };
            }, { items: [item(1), item(2)] });
            await outbox.pump();
            assert.deepEqual(log.filter(([k]) => k === 'failed' || k === 'sent'),
                [['failed', 1, error?.code ?? error], ['sent', 2, 2]]);
            assert.deepEqual(waits, []);
            assert.equal(items.length, 0);
        });
    }

    for (const [what, first] of [['a 5xx', 503], ['a network error', 0]]) {
        test(`a 409 after ${what} waits for the echo of the earlier try`, async () => {
            const { outbox, log, waits } = harness((body, attempt) => {
                if (attempt === 1) {
                    throw new HttpError(first, { retryable: true, retryAfter: 0 });
                }
                throw new HttpError(409, { code: 'wrong_step' });
            }, { items: [item(1)] });
            let naps = 0;
            const sleep = outbox.sleep;
            outbox.sleep = (ms) => {
                if (ms === 250 && ++naps === 3) {
                    outbox.markEchoed(1);
                }
                return sleep(ms);
            };
            await outbox.pump();
            assert.deepEqual(waits, [0, 250, 250, 250]);
            assert.deepEqual(log.slice(-2), [['persist', ''], ['sent', 1, null]]);
        });

        test(`a 409 after ${what} with no echo fails after about 3 s`, async () => {
            const { outbox, log, waits } = harness((body, attempt) => {
                if (attempt === 1) {
                    throw new HttpError(first, { retryable: true, retryAfter: 0 });
                }
                throw new HttpError(409, { code: 'wrong_step' });
            }, { items: [item(1)] });
            await outbox.pump();
            assert.deepEqual(waits, [0, ...Array(12).fill(250)]);
            assert.deepEqual(log.at(-1), ['failed', 1, 'wrong_step']);
        });
    }

    test('a 409 after a 429 (which stored nothing) fails at once', async () => {
        const { outbox, log, waits } = harness((body, attempt) => {
            if (attempt === 1) {
                throw new HttpError(429, { retryable: true, retryAfter: 0 });
            }
            throw new HttpError(409, { code: 'wrong_step' });
        }, { items: [item(1)] });
        await outbox.pump();
        assert.deepEqual(waits, [0]);
        assert.deepEqual(log.at(-1), ['failed', 1, 'wrong_step']);
    });

    test('an item echoed before it is posted is never posted', async () => {
        const { outbox, log } = harness(() => ({ seq: 1 }), { items: [item(1)] });
        outbox.markEchoed(1);
        await outbox.pump();
        assert.deepEqual(log, [['persist', ''], ['sent', 1, null]]);
    });

    test('stop() during a post: the answer is dropped, nothing is called', async () => {
        let outbox;
        const h = harness(() => {
            outbox.stop();
            throw new HttpError(409, { code: 'wrong_step' });
        }, { items: [item(1)] });
        outbox = h.outbox;
        await outbox.pump();
        assert.deepEqual(h.log, [['post', 1]]);
        assert.equal(h.items.length, 1);
    });
});
