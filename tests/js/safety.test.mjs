// Tests of static/js/safety.js: the workshop-mode commitment order and the 6-digit code
// (docs/crypto.md §5a), against tests/js/vectors.json and against a server that swaps keys.
// Run with `node --test tests/js/` after script/vendor-js.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, test } from 'node:test';

import { VECTORS_PATH, loadModules } from './make-vectors.mjs';

let thou;
let sodium;
let safety;
let V;

before(async () => {
    ({ thou, sodium } = await loadModules());
    safety = await import('../../static/js/safety.js');
    V = JSON.parse(readFileSync(VECTORS_PATH, 'utf8'));
});

const fromHex = (h) => sodium.from_hex(h);
const hex = (b) => sodium.to_hex(b);

function vectorPair() {
    const k = V.keys;
    return {
        roomId: V.workshop.room_id,
        a: { publicKey: fromHex(k.public_key_a), privateKey: fromHex(k.private_key_a) },
        b: { publicKey: fromHex(k.public_key_b), privateKey: fromHex(k.private_key_b) },
    };
}

/** Run the honest exchange between two WorkshopKeying objects through an in-order relay. */
function honestExchange(roomId, a, b) {
    const recA = { role: 'A', keyPair: a };
    const recB = { role: 'B', keyPair: b };
    const A = new safety.WorkshopKeying(roomId, recA);
    const B = new safety.WorkshopKeying(roomId, recB);
    const deliver = (from, type, bytes) => {
        for (const side of [A, B]) {
            const reason = type === 'commit' ? side.onCommit(from, bytes) : side.onKey(from, bytes);
            assert.equal(reason, null, `${side.role} refused ${from}'s ${type}`);
        }
    };
    assert.equal(B.due(), null, 'B waits for the commitment');
    assert.equal(A.due(), 'commit');
    const commitment = A.ownCommitment();
    recA.commitSent = true;
    assert.equal(A.due(), null, 'A waits until its commitment is seen stored');
    deliver('A', 'commit', commitment);
    assert.equal(A.due(), null, 'A waits for B\'s key before revealing its own');
    assert.equal(B.due(), 'key');
    recB.keySent = true;
    deliver('B', 'key', b.publicKey);
    assert.equal(A.due(), 'key');
    recA.keySent = true;
    deliver('A', 'key', a.publicKey);
    assert.equal(A.due(), null);
    assert.equal(B.due(), null);
    return { A, B, recA, recB };
}

describe('workshop safety code (§5a)', () => {
    test('the vectors: commitment and code', () => {
        const { roomId, a, b } = vectorPair();
        const A = new safety.WorkshopKeying(roomId, { role: 'A', keyPair: a });
        assert.equal(hex(A.ownCommitment()), V.workshop.commitment);
        const { A: sa, B: sb } = honestExchange(roomId, a, b);
        assert.equal(sa.code(), V.workshop.sas_code);
        assert.equal(sb.code(), V.workshop.sas_code);
        assert.equal(safety.groupCode(V.workshop.sas_code), '028 953');
    });

    test('both sides of a fresh pair see the same six digits', () => {
        for (let i = 0; i < 20; i++) {
            const { A, B } = honestExchange(`room-${i}`, thou.newKeyPair(), thou.newKeyPair());
            assert.match(A.code(), /^\d{6}$/);
            assert.equal(A.code(), B.code());
        }
    });

    test('no code before both keys are in', () => {
        const { roomId, a } = vectorPair();
        const A = new safety.WorkshopKeying(roomId, { role: 'A', keyPair: a });
        assert.equal(A.code(), null);
        assert.equal(A.keys(), null);
    });

    test('B refuses A\'s key that does not match the commitment it saw first', () => {
        const roomId = 'room-swap';
        const a = thou.newKeyPair();
        const b = thou.newKeyPair();
        const forged = thou.newKeyPair(); /* the server's own key, shown to B as A's */
        const recB = { role: 'B', keyPair: b };
        const B = new safety.WorkshopKeying(roomId, recB);
        assert.equal(B.onCommit('A', thou.keyCommitment(roomId, a.publicKey)), null);
        assert.equal(B.due(), 'key');
        recB.keySent = true;
        assert.equal(B.onKey('A', forged.publicKey), 'commitment');
        assert.equal(B.code(), null, 'no code from a refused key');
    });

    test('B refuses A\'s key that comes before any commitment', () => {
        const B = new safety.WorkshopKeying('r', { role: 'B', keyPair: thou.newKeyPair() });
        assert.equal(B.due(), null, 'B never sends its key before the commitment');
        assert.equal(B.onKey('A', thou.newKeyPair().publicKey), 'order');
    });

    test('a second, different commitment from A is refused; the first stays pinned', () => {
        const roomId = 'room-two-commits';
        const recB = { role: 'B', keyPair: thou.newKeyPair() };
        const B = new safety.WorkshopKeying(roomId, recB);
        const first = thou.keyCommitment(roomId, thou.newKeyPair().publicKey);
        assert.equal(B.onCommit('A', first), null);
        assert.equal(B.onCommit('A', first), null, 'the same one again (a replay) is fine');
        assert.equal(B.onCommit('A', thou.keyCommitment(roomId, thou.newKeyPair().publicKey)),
            'commitment');
        assert.equal(hex(recB.partnerCommitment), hex(first));
    });

    test('a commitment from B, or our own shown back changed, is refused', () => {
        const a = thou.newKeyPair();
        const A = new safety.WorkshopKeying('r', { role: 'A', keyPair: a });
        assert.equal(A.onCommit('B', new Uint8Array(32)), 'commitment');
        assert.equal(A.onCommit('A', new Uint8Array(32)), 'ownKey');
        assert.equal(A.onKey('A', thou.newKeyPair().publicKey), 'ownKey');
    });

    test('a partner key other than the accepted one is refused', () => {
        const { A } = honestExchange('room-pin', thou.newKeyPair(), thou.newKeyPair());
        assert.equal(A.onKey('B', thou.newKeyPair().publicKey), 'partnerKeyChanged');
    });

    test('a man in the middle gets different codes on the two sides', () => {
        // The server commits to its own key M for B and shows A its own key N as B's.
        const roomId = 'room-mitm';
        const a = thou.newKeyPair();
        const b = thou.newKeyPair();
        const m = thou.newKeyPair();
        const n = thou.newKeyPair();
        const recA = { role: 'A', keyPair: a, commitSent: true };
        const A = new safety.WorkshopKeying(roomId, recA);
        assert.equal(A.onCommit('A', A.ownCommitment()), null);
        assert.equal(A.onKey('B', n.publicKey), null);
        const B = new safety.WorkshopKeying(roomId, { role: 'B', keyPair: b });
        assert.equal(B.onCommit('A', thou.keyCommitment(roomId, m.publicKey)), null);
        assert.equal(B.onKey('A', m.publicKey), null);
        assert.notEqual(A.code(), B.code());
    });

    test('a reload resumes from the record', () => {
        const roomId = 'room-reload';
        const { recA, recB } = honestExchange(roomId, thou.newKeyPair(), thou.newKeyPair());
        recA.partnerKey = recB.keyPair.publicKey;
        recB.partnerKey = recA.keyPair.publicKey;
        const A2 = new safety.WorkshopKeying(roomId, recA);
        const B2 = new safety.WorkshopKeying(roomId, recB);
        assert.equal(A2.due(), null);
        assert.equal(B2.due(), null);
        assert.equal(A2.code(), B2.code());
        /* A's key replayed on B's reloaded stream is still accepted: it is the pinned one. */
        assert.equal(B2.onKey('A', recA.keyPair.publicKey), null);
    });
});
