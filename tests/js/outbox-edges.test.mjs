// More of static/js/outbox.js at its edges: which earlier failures make a later 409 worth
// waiting for, a Retry-After that is absent rather than null, and calls on an idle outbox.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { Outbox } from '../../static/js/outbox.js';

function httpError(status, fields = {}) {
    return Object.assign(new Error(`HTTP ${status}`), { status, code: null, retryable: false,
        retryAfter: null }, fields);
}

/** An outbox over `answers` (one per attempt: a value, or an error to throw). */
function outboxOf(answers, callbacks = {}) {
    const waits = [];
    let attempt = 0;
    const outbox = new Outbox({
        items: [{ id: 1, body: { type: 'note' }, afterSeq: 0 }],
        post: async () => {
            const answer = answers[attempt++];
            if (answer instanceof Error || answer === null) {
                throw answer;
            }
            return answer;
        },
        persist: async () => {},
        ...callbacks,
    });
    const sleep = outbox.sleep.bind(outbox);
    outbox.sleep = (ms) => {
        waits.push(ms);
        return sleep(0);
    };
    return { outbox, waits, attempts: () => attempt };
}

describe('after an uncertain failure', () => {
    test('a 500 is uncertain too: the 409 after it waits for the echo', async () => {
        const failed = [];
        const { outbox, waits } = outboxOf([httpError(500, { retryable: true, retryAfter: 0 }),
            httpError(409, { code: 'wrong_step' })], { onFailed: (item, e) => failed.push(e.code) });
        await outbox.pump();
        assert.deepEqual(waits, [0, ...Array(12).fill(250)]);
        assert.deepEqual(failed, ['wrong_step']);
    });

    test('other refusals after it still fail at once', async () => {
        for (const refusal of [httpError(400, { code: 'invalid_event' }),
            httpError(413, { code: 'too_large' }), null]) {
            const failed = [];
            const { outbox, waits } = outboxOf([httpError(503, { retryable: true,
                retryAfter: 0 }), refusal], { onFailed: (item, e) => failed.push(e) });
            await outbox.pump();
            assert.deepEqual(waits, [0]);
            assert.deepEqual(failed, [refusal]);
        }
    });
});

describe('waits', () => {
    test('no Retry-After at all means the backoff', async () => {
        const error = httpError(503, { retryable: true });
        delete error.retryAfter;
        const { outbox, waits } = outboxOf([error, { seq: 3 }]);
        await outbox.pump();
        assert.equal(waits.length, 1);
        assert.ok(waits[0] >= 375 && waits[0] <= 625, `backoff(0) is about 500 ms: ${waits[0]}`);
    });
});

describe('an idle outbox', () => {
    test('can be nudged, told of echoes and stopped', () => {
        const { outbox } = outboxOf([]);
        outbox.nudge();
        outbox.markEchoed(7);
        outbox.stop();
        assert.equal(outbox.stopped, true);
    });

    test('sends without any callbacks', async () => {
        const { outbox, attempts } = outboxOf([{ seq: 4 }]);
        await outbox.pump();
        assert.equal(attempts(), 1);
        assert.equal(outbox.items.length, 0);
    });
});
