// Tests of static/js/move.js: the payload of a "continue on another device" link
// (docs/crypto.md §9c) round-trips every field the new browser needs, carries the highest
// counter the seat used, and anything malformed is refused. Run with `node --test tests/js/`.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, test } from 'node:test';

import * as crypto from '../../static/js/crypto.js';
import {
    MOVE_PREFIX, decodeMove, encodeMove, isMoveFragment, moveLink, recordFromMove,
} from '../../static/js/move.js';

const seq = (start) => Uint8Array.from({ length: 32 }, (_, i) => start + i);

function record(extra = {}) {
    const keyPair = crypto.newKeyPair();
    return {
        v: 2, room: 'room12345678', role: 'B', token: crypto.encodeB64(seq(0)),
        keyPair, keySent: true, confirmSent: true, counter: 7, outbox: [],
        highest: { A: 9, B: 6 }, created: 1, expires: 2, ...extra,
    };
}

describe('move links', () => {
    before(() => crypto.ready());

    test('every field comes back, the public key from the private one', () => {
        const r = record({ setHash: seq(100), partnerKey: seq(150), partnerConfirmed: true });
        const seat = decodeMove(`#${MOVE_PREFIX}${encodeMove(r, 3)}`);
        assert.equal(seat.role, 'B');
        assert.equal(seat.oldToken, r.token);
        assert.deepEqual(seat.keyPair.privateKey, r.keyPair.privateKey);
        assert.deepEqual(seat.keyPair.publicKey, r.keyPair.publicKey);
        assert.equal(seat.keySent, true);
        assert.equal(seat.confirmSent, true);
        assert.equal(seat.partnerConfirmed, true);
        assert.deepEqual(seat.setHash, seq(100));
        assert.deepEqual(seat.partnerKey, seq(150));
        assert.equal(seat.secret, undefined);
        assert.deepEqual(seat.highest, { A: 9, B: 6 });
        assert.equal(seat.counter, 7, 'the record counter is higher than the log one here');
    });

    test('the public key comes from the private one as crypto_kx made it (vectors.json)', () => {
        const { keys } = JSON.parse(readFileSync(new URL('./vectors.json', import.meta.url)));
        const hex = (t) => Uint8Array.from(t.match(/../g), (b) => parseInt(b, 16));
        for (const role of ['a', 'b']) {
            const r = record({ keyPair: { publicKey: new Uint8Array(32),
                privateKey: hex(keys[`private_key_${role}`]) } });
            const seat = decodeMove(MOVE_PREFIX + encodeMove(r, 0));
            assert.equal(crypto.toHex(seat.keyPair.publicKey), keys[`public_key_${role}`]);
        }
    });

    test('the counter is the higher of the record and the log, up to 2^53 - 1', () => {
        const r = record({ counter: 2 });
        assert.equal(decodeMove(MOVE_PREFIX + encodeMove(r, 41)).counter, 41);
        const big = record({ counter: Number.MAX_SAFE_INTEGER });
        assert.equal(decodeMove(MOVE_PREFIX + encodeMove(big, 0)).counter,
            Number.MAX_SAFE_INTEGER);
        assert.throws(() => encodeMove(record({ counter: 2 ** 53 }), 0));
    });

    test('before confirmation the room secret travels too, and role A is A', () => {
        const r = record({ role: 'A', secret: seq(200), keySent: false, confirmSent: false });
        const seat = decodeMove(MOVE_PREFIX + encodeMove(r, 0));
        assert.equal(seat.role, 'A');
        assert.deepEqual(seat.secret, seq(200));
        assert.equal(seat.keySent, false);
        assert.equal(seat.partnerConfirmed, false);
    });

    test('the link holds the room id and the payload only in the fragment', () => {
        const link = moveLink('https://thou.example', 'room12345678', record(), 0);
        const url = new URL(link);
        assert.equal(url.pathname, '/r/room12345678');
        assert.equal(url.search, '');
        assert.ok(isMoveFragment(url.hash));
        assert.ok(!isMoveFragment(`#${crypto.encodeB64(seq(0))}`), 'a join link is not a move');
        assert.ok(link.length < 400, 'short enough for a QR code a phone reads off a screen');
    });

    test('a record for the new browser: its own token, the old one kept until the move', () => {
        const r = record({ setHash: seq(100) });
        const seat = decodeMove(MOVE_PREFIX + encodeMove(r, 12));
        const mine = crypto.encodeB64(seq(50));
        const out = recordFromMove('room12345678', seat, mine, 2, 1000, 500);
        assert.equal(out.token, mine);
        assert.equal(out.moving, r.token);
        assert.equal(out.counter, 12);
        assert.deepEqual(out.outbox, []);
        assert.deepEqual(out.setHash, seq(100));
        assert.equal(out.expires, 1500);
        assert.equal('partnerKey' in out, false);
    });

    test('anything malformed is refused', () => {
        const good = encodeMove(record({ setHash: seq(100) }), 0);
        const bytes = crypto.decodeB64(good);
        const variant = (fn) => {
            const b = bytes.slice();
            fn(b);
            return MOVE_PREFIX + crypto.encodeB64(b);
        };
        assert.throws(() => decodeMove(good), /not a move link/);
        assert.throws(() => decodeMove(`${MOVE_PREFIX}${good}=`));
        assert.throws(() => decodeMove(`${MOVE_PREFIX}`));
        assert.throws(() => decodeMove(variant((b) => { b[0] = 2; })), /version/);
        assert.throws(() => decodeMove(variant((b) => { b[1] |= 0x80; })), /version/);
        assert.throws(() => decodeMove(variant((b) => { b[1] &= ~16; })), /length/);
        assert.throws(() => decodeMove(variant((b) => { b[1] |= 32; })), /length/);
        assert.throws(() => decodeMove(variant((b) => { b[66] = 0xff; })), /range/);
        assert.throws(() => decodeMove(MOVE_PREFIX + crypto.encodeB64(bytes.slice(0, 89))));
        assert.throws(() => encodeMove({ role: 'C', keyPair: record().keyPair, token: 'x' }, 0));
    });
});
