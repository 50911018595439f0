// static/js/crypto.js keeps secrets short-lived and checks counters before it decrypts:
// the padded plaintext of an opened message is wiped even when it turns out malformed, and
// a replayed counter is refused before any decryption (a replay of a forgery says replay).

import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';

import { loadModules } from './make-vectors.mjs';

let thou;
let sodium;

before(async () => {
    ({ thou, sodium } = await loadModules());
});

function pair() {
    const a = thou.newKeyPair();
    const b = thou.newKeyPair();
    return { keysA: thou.sessionKeys('A', a, b.publicKey),
        keysB: thou.sessionKeys('B', b, a.publicKey) };
}

/* Any 32 bytes serve as the question set's hash here: both sides bind the same one. */
const fields = (over = {}) => ({ roomId: 'room-1', sender: 'A', counter: 1, question: 'q-1',
    setHash: new Uint8Array(32).fill(9), plaintext: 'hello', ...over });

/** Run fn while recording what sodium.memzero is given (and still zeroing it). */
function wipes(fn) {
    const seen = [];
    const memzero = sodium.memzero;
    sodium.memzero = (bytes) => {
        memzero.call(sodium, bytes);
        seen.push(bytes);
    };
    try {
        fn();
    } catch {
        /* the caller checks what was wiped either way */
    } finally {
        sodium.memzero = memzero;
    }
    return seen;
}

describe('wiping', () => {
    test('an opened message\'s padded plaintext is wiped', () => {
        const { keysA, keysB } = pair();
        const f = fields();
        const sealed = thou.sealAnswer(keysA.tx, f);
        const seen = wipes(() => assert.equal(thou.openAnswer(keysB.rx, { ...f, sealed }),
            'hello'));
        assert.equal(seen.length, 1);
        assert.equal(seen[0].length, thou.PAD_BLOCK);
        assert.ok(seen[0].every((b) => b === 0));
    });

    test('also when its padding is bad', () => {
        const { keysA, keysB } = pair();
        const f = fields();
        const nonce = sodium.randombytes_buf(thou.NONCE_BYTES);
        const ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(new Uint8Array(10).fill(65),
            thou.messageAD(f), null, nonce, keysA.tx);
        const sealed = thou.encodeB64(new Uint8Array([...nonce, ...ct]));
        const seen = wipes(() => thou.openAnswer(keysB.rx, { ...f, sealed }));
        assert.equal(seen.length, 1);
        assert.equal(seen[0].length, 10);
    });
});

describe('counters before decryption', () => {
    test('a replayed counter on a forged message is a replay, not a forgery', () => {
        const { keysA, keysB } = pair();
        const f = fields({ counter: 3 });
        const raw = thou.decodeB64(thou.sealAnswer(keysA.tx, f));
        raw[raw.length - 1] ^= 1;
        const guard = new thou.CounterGuard();
        guard.accept('A', 3);
        assert.throws(() => thou.openAnswer(keysB.rx, { ...f, sealed: thou.encodeB64(raw) },
            guard), (e) => e.code === 'replay');
        assert.throws(() => thou.openAnswer(keysB.rx, { ...f, sealed: thou.encodeB64(raw) }),
            (e) => e.code === 'tampered');
    });
});
