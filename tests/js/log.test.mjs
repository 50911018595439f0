// Tests of static/js/log.js, the pure bookkeeping behind the history checks of
// docs/crypto.md §7: replays under a new seq, gaps in a sender's counters, and the floor a
// reveal's answers must clear. Run with `node --test tests/js/`.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
    newLog, counterStatus, markSeen, counterGaps, newFloors, noteQuestion, revealFloor,
    SEALED_TYPES,
} from '../../static/js/log.js';

describe('log bookkeeping', () => {
    test('every step a person writes is sealed; only the key exchange is not', () => {
        for (const type of ['answer', 'reflect', 'add', 'note', 'pass', 'confirm_heard', 'pause',
            'resume', 'end']) {
            assert.ok(SEALED_TYPES.has(type), type);
        }
        assert.ok(!SEALED_TYPES.has('key') && !SEALED_TYPES.has('confirm'));
    });

    test('the same message again is a duplicate; another under a used counter a conflict', () => {
        const log = newLog();
        markSeen(log, 'B', 4, 'ct-4', false, 17);
        assert.equal(counterStatus(log, 'B', 4, 'ct-4'), 'duplicate');
        assert.equal(counterStatus(log, 'B', 4, 'other'), 'conflict');
        assert.equal(counterStatus(log, 'B', 5, 'ct-5'), 'new');
        assert.equal(counterStatus(log, 'A', 4, 'ct-4'), 'new');
        // the seq it first came with, so a replay under a new seq can be told apart
        assert.equal(log.seenSeq.B.get(4), 17);
    });

    test('gaps count the counters that never arrived below the highest', () => {
        const log = newLog();
        assert.equal(counterGaps(log, 'A'), 0);
        for (const c of [1, 2, 5]) {
            markSeen(log, 'A', c, `ct-${c}`, false, c);
        }
        assert.equal(counterGaps(log, 'A'), 2);
        markSeen(log, 'A', 3, 'ct-3', false, 9);
        assert.equal(counterGaps(log, 'A'), 1);
        assert.equal(counterGaps(log, 'B'), 0);
    });

    test('a reveal must clear the counters from before its question began', () => {
        const floors = newFloors();
        // q1: A answers (1), B reflects (1), A confirms (2)
        noteQuestion(floors, 'q1', { A: 1, B: 0 });
        noteQuestion(floors, 'q1', { A: 1, B: 1 });
        noteQuestion(floors, 'q1', { A: 2, B: 1 });
        // the reveal of q2 arrives first: the floor is where q1 ended
        assert.deepEqual(revealFloor(floors, 'q2'), { A: 2, B: 1 });
        // B's own private answer to q2 (counter 2) was seen first: still where q1 ended
        noteQuestion(floors, 'q2', { A: 2, B: 2 });
        assert.deepEqual(revealFloor(floors, 'q2'), { A: 2, B: 1 });
        // an A answer with counter 2 (older than q2) must not be accepted for q2's reveal
        assert.ok(!(2 > revealFloor(floors, 'q2').A));
        assert.ok(3 > revealFloor(floors, 'q2').A);
    });
});
