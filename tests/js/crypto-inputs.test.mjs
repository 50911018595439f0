// static/js/crypto.js at its edges: what each function refuses, and that the error says
// which input was wrong; the exact limits (field sizes, sealed lengths, counters); and that
// unexpected errors are never taken for a failed check. Written against the survivors of a
// mutation run (docs/testing.md): each test fails for some small change of the module.

import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';

import { loadModules } from './make-vectors.mjs';

let thou;
let sodium;

before(async () => {
    ({ thou, sodium } = await loadModules());
});

/** fn throws a CryptoError with this code whose message matches `message`. */
function refuses(code, message, fn) {
    assert.throws(fn, (e) => {
        assert.ok(e instanceof thou.CryptoError, `expected CryptoError, got ${e}`);
        assert.equal(e.name, 'CryptoError');
        assert.equal(e.code, code, e.message);
        assert.match(e.message, message);
        return true;
    });
}

const bytes = (n, fill = 7) => new Uint8Array(n).fill(fill);
const pair = () => {
    const a = thou.newKeyPair();
    const b = thou.newKeyPair();
    return { a, b, keysA: thou.sessionKeys('A', a, b.publicKey),
        keysB: thou.sessionKeys('B', b, a.publicKey) };
};
/* Any 32 bytes serve as the question set's hash here: both sides bind the same one. */
const setHash = bytes(32, 9);
const fields = (over = {}) => ({ roomId: 'room-1', sender: 'A', counter: 1, question: 'q-1',
    setHash, plaintext: 'hello', ...over });

/* An object that throws a TypeError when `instanceof` looks at it: an error that is not the
 * module's own and must not be mistaken for a bad input. */
const hostile = () => new Proxy({}, {
    getPrototypeOf() {
        throw new TypeError('hostile object');
    },
});

describe('before ready()', () => {
    test('a fresh instance refuses to work until ready() resolved, then works', async () => {
        const fresh = await import(`../../static/js/crypto.js?fresh=${Date.now()}`);
        for (const call of [() => fresh.encodeB64(bytes(3)), () => fresh.newRoomSecret(),
            () => fresh.libraryVersion()]) {
            assert.throws(call, (e) => e instanceof fresh.CryptoError && e.code === 'not_ready'
                && /ready\(\)/.test(e.message));
        }
        const first = fresh.ready();
        assert.equal(fresh.ready(), first, 'ready() is idempotent: one promise');
        await first;
        assert.equal(fresh.encodeB64(bytes(3, 0)), 'AAAA');
        assert.match(fresh.libraryVersion(), /^\d+\.\d+\.\d+$/);
    });
});

describe('errors name the input that was wrong', () => {
    test('byte arrays: type and length', () => {
        refuses('malformed', /^bytes must be a Uint8Array$/, () => thou.toHex('00'));
        refuses('malformed', /^bytes must be a Uint8Array$/, () => thou.wipe([1, 2]));
        refuses('malformed', /^bytes must be a Uint8Array$/, () => thou.encodeB64('AA'));
        refuses('malformed', /^room secret must be 32 bytes, not 31$/,
            () => thou.deriveRoomKeys(bytes(31)));
        refuses('malformed', /^public key must be 32 bytes, not 33$/,
            () => thou.publicKeyMacInput('r', 'A', bytes(33)));
        refuses('malformed', /^MAC key must be 32 bytes/,
            () => thou.macPublicKey(bytes(16), 'r', 'A', bytes(32)));
        refuses('malformed', /^MAC key must be 32 bytes/,
            () => thou.verifyPublicKey(bytes(16), 'r', 'A', bytes(32), bytes(32)));
        refuses('malformed', /^confirmation key must be 32 bytes/,
            () => thou.confirmationMac(bytes(1), 'r', 'A', bytes(32), bytes(32), setHash));
        refuses('malformed', /^confirmation key must be 32 bytes/,
            () => thou.verifyConfirmation(bytes(1), 'r', 'A', bytes(32), bytes(32), setHash,
                bytes(32)));
        refuses('malformed', /^public key A must be 32 bytes/,
            () => thou.confirmationInput('r', 'A', bytes(2), bytes(32), setHash));
        refuses('malformed', /^public key B must be 32 bytes/,
            () => thou.confirmationInput('r', 'A', bytes(32), bytes(2), setHash));
        refuses('malformed', /^set hash must be a Uint8Array$/,
            () => thou.confirmationInput('r', 'A', bytes(32), bytes(32)));
        refuses('malformed', /^set hash must be 32 bytes, not 31$/,
            () => thou.confirmationInput('r', 'A', bytes(32), bytes(32), bytes(31)));
        refuses('malformed', /^set hash must be a Uint8Array$/,
            () => thou.confirmationMac(bytes(32), 'r', 'A', bytes(32), bytes(32), 'hash'));
        refuses('malformed', /^set hash must be a Uint8Array$/,
            () => thou.messageAD(fields({ setHash: undefined })));
        refuses('malformed', /^set hash must be 32 bytes, not 33$/,
            () => thou.messageAD(fields({ setHash: bytes(33) })));
        refuses('malformed', /^set hash must be 32 bytes, not 0$/,
            () => thou.sealAnswer(bytes(32), fields({ setHash: bytes(0) })));
        refuses('malformed', /^set hash must be a Uint8Array$/,
            () => thou.openAnswer(bytes(32), { ...fields({ setHash: [...setHash] }),
                sealed: 'AAAA' }));
        refuses('malformed', /^public key A must be 32 bytes/,
            () => thou.safetyCodeInput(bytes(2), bytes(32)));
        refuses('malformed', /^public key B must be 32 bytes/,
            () => thou.safetyCodeInput(bytes(32), bytes(2)));
        refuses('malformed', /^public key must be 32 bytes/, () => thou.fingerprint(bytes(31)));
        refuses('malformed', /^tx key must be 32 bytes/,
            () => thou.sealAnswer(bytes(3), fields()));
        refuses('malformed', /^rx key must be 32 bytes/,
            () => thou.openAnswer(bytes(3), { ...fields(), sealed: 'AAAA' }));
        refuses('malformed', /^study public key must be 32 bytes/,
            () => thou.sealForStudy(bytes(3), 'x'));
        refuses('malformed', /^study public key must be 32 bytes/,
            () => thou.openForStudy(bytes(3), bytes(32), 'AAAA'));
        refuses('malformed', /^study secret key must be 32 bytes/,
            () => thou.openForStudy(bytes(32), bytes(3), 'AAAA'));
    });

    test('session keys: role, my key pair (even when missing) and the partner key', () => {
        const me = thou.newKeyPair();
        const partner = thou.newKeyPair().publicKey;
        refuses('malformed', /^role must be "A" or "B"$/, () => thou.sessionKeys('C', me, partner));
        refuses('malformed', /^my public key must be a Uint8Array$/,
            () => thou.sessionKeys('A', undefined, partner));
        refuses('malformed', /^my public key must be a Uint8Array$/,
            () => thou.sessionKeys('A', null, partner));
        refuses('malformed', /^my private key must be a Uint8Array$/,
            () => thou.sessionKeys('A', { publicKey: me.publicKey }, partner));
        refuses('malformed', /^partner public key must be 32 bytes/,
            () => thou.sessionKeys('B', me, bytes(31)));
        refuses('bad_key', /partner public key was rejected/,
            () => thou.sessionKeys('A', me, new Uint8Array(32)));
    });

    test('text fields: type, emptiness, NUL, and size (256 bytes is the most)', () => {
        refuses('malformed', /^room id must be a string$/,
            () => thou.publicKeyMacInput(7, 'A', bytes(32)));
        refuses('malformed', /^room id must not be empty$/,
            () => thou.publicKeyMacInput('', 'A', bytes(32)));
        refuses('malformed', /^room id must not contain NUL$/,
            () => thou.publicKeyMacInput('a\0b', 'A', bytes(32)));
        refuses('malformed', /^room id is longer than 256 bytes$/,
            () => thou.publicKeyMacInput('x'.repeat(257), 'A', bytes(32)));
        /* 128 two-byte characters are 256 bytes: the limit counts bytes, and allows it. */
        const longest = 'é'.repeat(128);
        assert.equal(thou.publicKeyMacInput(longest, 'A', bytes(32)).length,
            5 + 1 + 3 + 1 + 256 + 1 + 1 + 1 + 32);
        refuses('malformed', /^room id is longer than 256 bytes$/,
            () => thou.publicKeyMacInput(`${longest}x`, 'A', bytes(32)));
        refuses('malformed', /^role must be "A" or "B"$/,
            () => thou.publicKeyMacInput('r', 'a', bytes(32)));
        refuses('malformed', /^room id must be a string$/,
            () => thou.confirmationInput(null, 'A', bytes(32), bytes(32), setHash));
        refuses('malformed', /^sender must be "A" or "B"$/,
            () => thou.confirmationInput('r', 'AB', bytes(32), bytes(32), setHash));
        refuses('malformed', /^room id must be a string$/, () => thou.messageAD({ ...fields(),
            roomId: undefined }));
        refuses('malformed', /^sender must be "A" or "B"$/, () => thou.messageAD({ ...fields(),
            sender: 'b' }));
        refuses('malformed', /^question must be a string$/, () => thou.messageAD({ ...fields(),
            question: undefined }));
        refuses('malformed', /^question is longer than 256 bytes$/, () => thou.messageAD({
            ...fields(), question: 'q'.repeat(257) }));
        assert.ok(thou.messageAD({ ...fields(), question: 'q'.repeat(256) }).length > 256);
    });

    test('kinds and counters', () => {
        for (const kind of ['answer!', 'Answer', '1answer', `a${'b'.repeat(32)}`, 'an swer', 5,
            null]) {
            refuses('malformed', /^kind must match/, () => thou.messageAD({ ...fields(), kind }));
        }
        assert.ok(thou.messageAD({ ...fields(), kind: `a${'_'.repeat(31)}` }));
        for (const counter of [0, -1, 1.5, '1', Number.MAX_SAFE_INTEGER + 1]) {
            refuses('malformed', /^counter must be an integer from 1 to 2\^53-1$/,
                () => thou.messageAD({ ...fields(), counter }));
        }
        refuses('malformed', /^plaintext must be a string$/,
            () => thou.sealAnswer(bytes(32), fields({ plaintext: 42 })));
        refuses('malformed', /^plaintext must be a string$/,
            () => thou.sealForStudy(bytes(32), undefined));
    });
});

describe('base64url decoding says why it refused', () => {
    test('not the alphabet, or an impossible length, before decoding', () => {
        for (const text of ['ab+c', 'ab/c', 'abc=', ' abc', 'abc ', 'a+bc', '+abc', 'abcde', 7]) {
            refuses('malformed', /^not an unpadded base64url string$/, () => thou.decodeB64(text));
        }
    });

    test('the alphabet but not canonical', () => {
        refuses('malformed', /^not a canonical unpadded base64url string$/,
            () => thou.decodeB64('AB'));
    });

    test('the wrong size', () => {
        refuses('malformed', /^expected 4 bytes, got 3$/, () => thou.decodeB64('AAAA', 4));
        assert.deepEqual(thou.decodeB64('AAAA', 3), new Uint8Array(3));
    });
});

describe('checks that return false never swallow unexpected errors', () => {
    test('verifyPublicKey', () => {
        const key = bytes(32);
        assert.equal(thou.verifyPublicKey(key, 'r', 'A', bytes(32), bytes(31)), false);
        assert.equal(thou.verifyPublicKey(key, '', 'A', bytes(32), bytes(32)), false);
        assert.throws(() => thou.verifyPublicKey(key, 'r', 'A', bytes(32), hostile()), TypeError);
    });

    test('verifyConfirmation', () => {
        const key = bytes(32);
        assert.equal(thou.verifyConfirmation(key, 'r', 'A', bytes(32), bytes(32), setHash,
            bytes(31)), false);
        assert.equal(thou.verifyConfirmation(key, 'r', 'X', bytes(32), bytes(32), setHash,
            bytes(32)), false);
        assert.equal(thou.verifyConfirmation(key, 'r', 'A', bytes(32), bytes(32), bytes(31),
            bytes(32)), false);
        assert.throws(() => thou.verifyConfirmation(key, 'r', 'A', bytes(32), bytes(32),
            setHash, hostile()), TypeError);
        assert.throws(() => thou.verifyConfirmation(key, 'r', 'A', bytes(32), bytes(32),
            hostile(), bytes(32)), TypeError);
    });
});

describe('sealed messages at the size limits', () => {
    test('nonce and tag alone (40 bytes) are a forgery; anything shorter is malformed', () => {
        const { keysB } = pair();
        refuses('tampered', /^message failed authentication$/, () => thou.openAnswer(keysB.rx,
            { ...fields(), sealed: thou.encodeB64(bytes(40)) }));
        for (const n of [39, 24, 0]) {
            refuses('malformed', /^sealed message is shorter than nonce and tag$/,
                () => thou.openAnswer(keysB.rx, { ...fields(), sealed: thou.encodeB64(bytes(n)) }));
        }
    });

    test('authentic bytes that are not UTF-8 are malformed, never replaced', () => {
        const { keysA, keysB } = pair();
        const f = fields();
        const padded = sodium.pad(Uint8Array.from([0x61, 0xff, 0x62]), thou.PAD_BLOCK);
        const nonce = sodium.randombytes_buf(thou.NONCE_BYTES);
        const ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(padded, thou.messageAD(f),
            null, nonce, keysA.tx);
        const sealed = thou.encodeB64(new Uint8Array([...nonce, ...ct]));
        refuses('malformed', /^authenticated message has bad padding or UTF-8$/,
            () => thou.openAnswer(keysB.rx, { ...f, sealed }));
    });

    test('a guard refuses a replay before opening and records only what opened', () => {
        const { keysA, keysB } = pair();
        const f = fields({ counter: 5 });
        const sealed = thou.sealAnswer(keysA.tx, f);
        const guard = new thou.CounterGuard();
        guard.accept('A', 5);
        refuses('replay', /^counter 5 from A is not newer than 5$/,
            () => thou.openAnswer(keysB.rx, { ...f, sealed }, guard));
        const fresh = new thou.CounterGuard();
        assert.equal(thou.openAnswer(keysB.rx, { ...f, sealed }, fresh), 'hello');
        assert.equal(fresh.lastAccepted('A'), 5);
        assert.equal(fresh.lastAccepted('B'), 0);
        refuses('tampered', /failed authentication/, () => thou.openAnswer(keysB.rx,
            { ...fields({ counter: 9 }), sealed }, fresh));
        assert.equal(fresh.lastAccepted('A'), 5, 'a forged counter is not recorded');
    });
});

describe('CounterGuard', () => {
    test('names the sender it refuses', () => {
        const guard = new thou.CounterGuard();
        refuses('malformed', /^sender must be "A" or "B"$/, () => guard.check('C', 1));
        refuses('malformed', /^sender must be "A" or "B"$/, () => guard.lastAccepted('C'));
        refuses('malformed', /^counter must be/, () => guard.check('A', 0));
        assert.equal(guard.accept('B', 3), 2);
        refuses('replay', /^counter 2 from B is not newer than 3$/, () => guard.check('B', 2));
    });

    test('restores zeros and refuses anything that is not its own object', () => {
        const zero = thou.CounterGuard.fromObject({ v: 1, last: { A: 0, B: 0 } });
        assert.deepEqual(zero.toObject(), { v: 1, last: { A: 0, B: 0 } });
        assert.deepEqual(JSON.parse(JSON.stringify(zero)), { v: 1, last: { A: 0, B: 0 } });
        const bad = [null, undefined, 'x', 1, { v: 2, last: { A: 0, B: 0 } },
            { last: { A: 0, B: 0 } }, { v: 1 }, { v: 1, last: null }, { v: 1, last: 'AB' },
            { v: 1, last: { A: -1, B: 0 } }, { v: 1, last: { A: 0, B: -1 } },
            { v: 1, last: { A: 1.5, B: 0 } }, { v: 1, last: { A: 0, B: '2' } },
            { v: 1, last: { B: 0 } }, { v: 1, last: { A: 0 } }];
        for (const obj of bad) {
            refuses('malformed', /^not a serialised CounterGuard$/,
                () => thou.CounterGuard.fromObject(obj));
        }
    });
});

describe('safety codes and research copies', () => {
    test('every group keeps its leading zeros', () => {
        let sawLeadingZero = false;
        for (let i = 0; i < 40 && !sawLeadingZero; i++) {
            const { a, b } = pair();
            const code = thou.safetyCode(a.publicKey, b.publicKey);
            assert.match(code, /^\d{5}( \d{5}){5}$/);
            const h = sodium.crypto_generichash(32, thou.safetyCodeInput(a.publicKey, b.publicKey),
                null);
            const groups = code.split(' ');
            for (let g = 0; g < 6; g++) {
                let v = 0n;
                for (let k = 0; k < 5; k++) {
                    v = (v << 8n) | BigInt(h[g * 5 + k]);
                }
                assert.equal(Number(groups[g]), Number(v % 100000n));
                sawLeadingZero ||= groups[g].startsWith('0');
            }
        }
        assert.ok(sawLeadingZero, 'some group started with 0 in 40 codes');
    });

    test('a research copy that is not base64url is malformed, a changed one tampered', () => {
        const study = sodium.crypto_box_keypair();
        refuses('malformed', /^not an unpadded base64url string$/,
            () => thou.openForStudy(study.publicKey, study.privateKey, 'no+base64'));
        const sealed = thou.sealForStudy(study.publicKey, 'consented');
        const raw = thou.decodeB64(sealed);
        raw[raw.length - 1] ^= 1;
        refuses('tampered', /^research copy failed authentication$/,
            () => thou.openForStudy(study.publicKey, study.privateKey, thou.encodeB64(raw)));
        const unpadded = thou.encodeB64(sodium.crypto_box_seal(Uint8Array.from([0x61, 0x62]),
            study.publicKey));
        refuses('malformed', /^research copy has bad padding or UTF-8$/,
            () => thou.openForStudy(study.publicKey, study.privateKey, unpadded));
        const notUtf8 = thou.encodeB64(sodium.crypto_box_seal(
            sodium.pad(Uint8Array.from([0xc3, 0x28]), thou.PAD_BLOCK), study.publicKey));
        refuses('malformed', /^research copy has bad padding or UTF-8$/,
            () => thou.openForStudy(study.publicKey, study.privateKey, notUtf8));
    });
});
