// The whole client-side cryptography of thou (DESIGN.md §2), as one ES module.
//
// No DOM, no storage, no network: callers pass bytes and strings in and get bytes and
// strings out. Key material is always a Uint8Array; values that travel over the API are
// unpadded base64url strings (encodeB64/decodeB64). Every byte layout built here is
// specified in docs/crypto.md, because the server (C, libsodium 1.0.18) and offline tools
// must reproduce some of them: keep the two in step.
//
// Only libsodium APIs present both in libsodium 1.0.18 and in libsodium-wrappers are used
// (no crypto_kdf_hkdf_*, no AEGIS, no crypto_pwhash).
//
// Usage: `await ready()` once, then every other function is synchronous.

import sodium from '../vendor/libsodium-wrappers.mjs';

/** Protocol version tag, the first field of every MAC input and associated data. */
export const VERSION_TAG = 'thou2';
/** Block size answers are padded to with sodium_pad before sealing. */
export const PAD_BLOCK = 256;
/** Sizes in bytes. */
export const ROOM_SECRET_BYTES = 32;
export const KEY_BYTES = 32;
export const PUBLIC_KEY_BYTES = 32;
export const MAC_BYTES = 32;
export const NONCE_BYTES = 24;
export const AEAD_TAG_BYTES = 16;
export const SET_HASH_BYTES = 32;
/** Largest counter a message may carry (counters are decimal in the AD). */
export const MAX_COUNTER = Number.MAX_SAFE_INTEGER;

// crypto_kdf contexts are exactly 8 bytes; subkey ids are fixed per purpose.
const ROOM_CONTEXT = 'thouroom';
const ROOM_JOIN_SECRET_ID = 1;
const ROOM_MAC_KEY_ID = 2;
const SESSION_CONTEXT = 'thousess';
const SESSION_MESSAGE_KEY_ID = 1;
const SESSION_CONFIRM_KEY_ID = 2;

const SAFETY_GROUPS = 6;
const SAFETY_GROUP_DIGITS = 5;
const FINGERPRINT_BYTES = 16;

const ROLES = new Set(['A', 'B']);
const KIND_RE = /^[a-z][a-z_]{0,31}$/;
const B64URL_RE = /^[A-Za-z0-9_-]*$/;
const MAX_FIELD_BYTES = 256;

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * An error from this module. `code` is stable and meant for program logic:
 * - 'malformed': an input is not well-formed (bad base64url, wrong length, bad field);
 * - 'tampered':  authentication failed (wrong key, or ciphertext or any AD field changed);
 * - 'replay':    a message counter is not newer than the last one accepted from its sender;
 * - 'bad_key':   the partner's public key is unusable for key exchange;
 * - 'not_ready': ready() has not completed.
 */
export class CryptoError extends Error {
    constructor(code, message) {
        super(message);
        this.name = 'CryptoError';
        this.code = code;
    }
}

let readyPromise = null;
let isReady = false;

/** Load and initialise libsodium (wasm). Idempotent; resolves when the module is usable. */
export function ready() {
    if (!readyPromise) {
        readyPromise = sodium.ready.then(() => {
            isReady = true;
        });
    }
    return readyPromise;
}

/** Version of the libsodium C library inside the wasm build, e.g. "1.0.22". */
export function libraryVersion() {
    return na().sodium_version_string();
}

function na() {
    if (!isReady) {
        throw new CryptoError('not_ready', 'crypto.ready() must complete before use');
    }
    return sodium;
}

function requireBytes(value, length, what) {
    if (!(value instanceof Uint8Array)) {
        throw new CryptoError('malformed', `${what} must be a Uint8Array`);
    }
    if (length !== undefined && value.length !== length) {
        throw new CryptoError('malformed', `${what} must be ${length} bytes, not ${value.length}`);
    }
    return value;
}

function requireRole(role, what) {
    if (!ROLES.has(role)) {
        throw new CryptoError('malformed', `${what} must be "A" or "B"`);
    }
    return role;
}

// A free-text field of a MAC input or AD: UTF-8, no NUL (the separator), bounded.
function textField(value, what, { allowEmpty = false } = {}) {
    if (typeof value !== 'string') {
        throw new CryptoError('malformed', `${what} must be a string`);
    }
    if (!allowEmpty && value.length === 0) {
        throw new CryptoError('malformed', `${what} must not be empty`);
    }
    if (value.includes('\0')) {
        throw new CryptoError('malformed', `${what} must not contain NUL`);
    }
    const bytes = utf8Encoder.encode(value);
    if (bytes.length > MAX_FIELD_BYTES) {
        throw new CryptoError('malformed', `${what} is longer than ${MAX_FIELD_BYTES} bytes`);
    }
    return bytes;
}

function requireCounter(counter) {
    if (!Number.isSafeInteger(counter) || counter < 1) {
        throw new CryptoError('malformed', 'counter must be an integer from 1 to 2^53-1');
    }
    return counter;
}

function requireKind(kind) {
    if (typeof kind !== 'string' || !KIND_RE.test(kind)) {
        throw new CryptoError('malformed', 'kind must match /^[a-z][a-z_]{0,31}$/');
    }
    return kind;
}

// Fields joined by one 0x00 byte. Text fields never contain NUL, and a binary field is
// only ever last or of fixed length, so the encoding is injective.
function joinFields(fields) {
    const parts = fields.map((f) => (typeof f === 'string' ? utf8Encoder.encode(f) : f));
    const total = parts.reduce((n, p) => n + p.length, 0) + parts.length - 1;
    const out = new Uint8Array(total);
    let at = 0;
    parts.forEach((p, i) => {
        if (i > 0) {
            out[at++] = 0;
        }
        out.set(p, at);
        at += p.length;
    });
    return out;
}

function concatBytes(...arrays) {
    const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
    let at = 0;
    for (const a of arrays) {
        out.set(a, at);
        at += a.length;
    }
    return out;
}

/* ---------------------------------------------------------------- encoding */

/** Bytes → unpadded base64url ("URLSAFE_NO_PADDING": A-Z a-z 0-9 - _, no '='). */
export function encodeB64(bytes) {
    requireBytes(bytes, undefined, 'bytes');
    const s = na();
    return s.to_base64(bytes, s.base64_variants.URLSAFE_NO_PADDING);
}

/**
 * Unpadded base64url → bytes. Rejects padding, other alphabets, whitespace and
 * non-canonical encodings with CryptoError 'malformed'; with `length`, also any other size.
 */
export function decodeB64(text, length) {
    if (typeof text !== 'string' || !B64URL_RE.test(text) || text.length % 4 === 1) {
        throw new CryptoError('malformed', 'not an unpadded base64url string');
    }
    const s = na();
    let bytes;
    try {
        bytes = s.from_base64(text, s.base64_variants.URLSAFE_NO_PADDING);
    } catch {
        throw new CryptoError('malformed', 'not a canonical unpadded base64url string');
    }
    if (length !== undefined && bytes.length !== length) {
        throw new CryptoError('malformed', `expected ${length} bytes, got ${bytes.length}`);
    }
    return bytes;
}

/** Lowercase hex of bytes (for display and test vectors). */
export function toHex(bytes) {
    requireBytes(bytes, undefined, 'bytes');
    return na().to_hex(bytes);
}

/** Overwrite key material in place with zeros (sodium_memzero). */
export function wipe(bytes) {
    requireBytes(bytes, undefined, 'bytes');
    na().memzero(bytes);
}

/* ---------------------------------------------------------------- room keys */

/** A fresh random 32-byte room secret S (goes into the link's fragment, never to the server). */
export function newRoomSecret() {
    return na().randombytes_buf(ROOM_SECRET_BYTES);
}

/**
 * Derive the keys of a link-mode room from its secret S:
 * - joinSecret   = crypto_kdf_derive_from_key(32, 1, "thouroom", S), sent to join;
 * - joinVerifier = crypto_generichash(32, joinSecret) (unkeyed BLAKE2b), sent at creation;
 * - macKey       = crypto_kdf_derive_from_key(32, 2, "thouroom", S), never leaves the browser.
 */
export function deriveRoomKeys(roomSecret) {
    requireBytes(roomSecret, ROOM_SECRET_BYTES, 'room secret');
    const s = na();
    const joinSecret = s.crypto_kdf_derive_from_key(
        KEY_BYTES, ROOM_JOIN_SECRET_ID, ROOM_CONTEXT, roomSecret);
    const macKey = s.crypto_kdf_derive_from_key(KEY_BYTES, ROOM_MAC_KEY_ID, ROOM_CONTEXT, roomSecret);
    const joinVerifier = s.crypto_generichash(KEY_BYTES, joinSecret, null);
    return { joinSecret, joinVerifier, macKey };
}

/**
 * The hash the server keeps of a bearer token (base64url of 32 random bytes): unkeyed
 * BLAKE2b-256 of the token's bytes. A joining browser draws its own token and sends only
 * this, so a retried join can prove it is the same browser.
 */
export function tokenHash(token) {
    return na().crypto_generichash(32, decodeB64(token, 32), null);
}

/* ---------------------------------------------------------------- key exchange */

/** A fresh X25519 key pair for crypto_kx: { publicKey, privateKey } (32 bytes each). */
export function newKeyPair() {
    const kp = na().crypto_kx_keypair();
    return { publicKey: kp.publicKey, privateKey: kp.privateKey };
}

/** The exact bytes macPublicKey authenticates: "thou2" 0 "key" 0 room 0 role 0 publicKey. */
export function publicKeyMacInput(roomId, role, publicKey) {
    return joinFields([
        VERSION_TAG, 'key', textField(roomId, 'room id'), requireRole(role, 'role'),
        requireBytes(publicKey, PUBLIC_KEY_BYTES, 'public key'),
    ]);
}

/**
 * MAC (crypto_auth, HMAC-SHA512-256, 32 bytes) of a participant's public key under the
 * room's macKey, binding room and role: the server, not knowing S, cannot substitute a key
 * or present one participant's key as the other's.
 */
export function macPublicKey(macKey, roomId, role, publicKey) {
    requireBytes(macKey, KEY_BYTES, 'MAC key');
    return na().crypto_auth(publicKeyMacInput(roomId, role, publicKey), macKey);
}

/** True iff `mac` is macPublicKey(macKey, roomId, role, publicKey); false for any bad input. */
export function verifyPublicKey(macKey, roomId, role, publicKey, mac) {
    requireBytes(macKey, KEY_BYTES, 'MAC key');
    let input;
    try {
        input = publicKeyMacInput(roomId, role, publicKey);
        requireBytes(mac, MAC_BYTES, 'MAC');
    } catch (e) {
        if (e instanceof CryptoError) {
            return false;
        }
        throw e;
    }
    return na().crypto_auth_verify(mac, input, macKey) === true;
}

/**
 * Session keys for `role` ("A" is the crypto_kx client, "B" the server), given my key pair
 * and the partner's (verified) public key. Returns
 *   { tx, rx }               message keys: seal with tx, open with rx (A.tx == B.rx);
 *   { confirmTx, confirmRx } key-confirmation keys (A.confirmTx == B.confirmRx).
 * Each is crypto_kdf_derive_from_key(32, id, "thousess", K) of the raw crypto_kx key K of
 * that direction, id 1 for messages, 2 for confirmation, so no key serves two primitives.
 * Throws CryptoError 'bad_key' if the partner's key is rejected by crypto_kx.
 */
export function sessionKeys(role, myKeyPair, partnerPublicKey) {
    requireRole(role, 'role');
    requireBytes(myKeyPair?.publicKey, PUBLIC_KEY_BYTES, 'my public key');
    requireBytes(myKeyPair?.privateKey, KEY_BYTES, 'my private key');
    requireBytes(partnerPublicKey, PUBLIC_KEY_BYTES, 'partner public key');
    const s = na();
    let raw;
    try {
        raw = role === 'A'
            ? s.crypto_kx_client_session_keys(myKeyPair.publicKey, myKeyPair.privateKey,
                partnerPublicKey)
            : s.crypto_kx_server_session_keys(myKeyPair.publicKey, myKeyPair.privateKey,
                partnerPublicKey);
    } catch {
        throw new CryptoError('bad_key', 'the partner public key was rejected by key exchange');
    }
    const derive = (id, key) => s.crypto_kdf_derive_from_key(KEY_BYTES, id, SESSION_CONTEXT, key);
    const keys = {
        tx: derive(SESSION_MESSAGE_KEY_ID, raw.sharedTx),
        rx: derive(SESSION_MESSAGE_KEY_ID, raw.sharedRx),
        confirmTx: derive(SESSION_CONFIRM_KEY_ID, raw.sharedTx),
        confirmRx: derive(SESSION_CONFIRM_KEY_ID, raw.sharedRx),
    };
    s.memzero(raw.sharedTx);
    s.memzero(raw.sharedRx);
    return keys;
}

/**
 * The transcript confirmationMac authenticates:
 *   "thou2" 0 "confirm" 0 room 0 sender 0 setHash(32) pkA(32) pkB(32)
 */
export function confirmationInput(roomId, sender, pkA, pkB, setHash) {
    return joinFields([
        VERSION_TAG, 'confirm', textField(roomId, 'room id'), requireRole(sender, 'sender'),
        concatBytes(requireBytes(setHash, SET_HASH_BYTES, 'set hash'),
            requireBytes(pkA, PUBLIC_KEY_BYTES, 'public key A'),
            requireBytes(pkB, PUBLIC_KEY_BYTES, 'public key B')),
    ]);
}

/**
 * Key-confirmation MAC sent by `sender` once it has both public keys: crypto_auth over the
 * transcript (the question set's hash, both keys in A,B order) under the sender's confirmTx
 * key. Proves the sender derived the same session keys from the same two public keys and
 * was shown the same question set; keyed per direction (and naming the sender), so a MAC
 * reflected back to its author does not verify. Works in workshop mode too, where no room
 * secret exists.
 */
export function confirmationMac(confirmTx, roomId, sender, pkA, pkB, setHash) {
    requireBytes(confirmTx, KEY_BYTES, 'confirmation key');
    return na().crypto_auth(confirmationInput(roomId, sender, pkA, pkB, setHash), confirmTx);
}

/** True iff `mac` is the partner's confirmationMac, checked with my confirmRx key. */
export function verifyConfirmation(confirmRx, roomId, sender, pkA, pkB, setHash, mac) {
    requireBytes(confirmRx, KEY_BYTES, 'confirmation key');
    let input;
    try {
        input = confirmationInput(roomId, sender, pkA, pkB, setHash);
        requireBytes(mac, MAC_BYTES, 'MAC');
    } catch (e) {
        if (e instanceof CryptoError) {
            return false;
        }
        throw e;
    }
    return na().crypto_auth_verify(mac, input, confirmRx) === true;
}

/** The bytes safetyCode hashes: "thou2" 0 "safety" 0 pkA pkB. */
export function safetyCodeInput(pkA, pkB) {
    return joinFields([
        VERSION_TAG, 'safety',
        concatBytes(requireBytes(pkA, PUBLIC_KEY_BYTES, 'public key A'),
            requireBytes(pkB, PUBLIC_KEY_BYTES, 'public key B')),
    ]);
}

/**
 * The safety code both partners compare aloud: 6 groups of 5 decimal digits separated by
 * spaces (about 100 bits). H = crypto_generichash(32, safetyCodeInput(pkA, pkB)); group i
 * is the big-endian integer of H[5i..5i+4] modulo 100000, zero-padded. Same on both sides.
 */
export function safetyCode(pkA, pkB) {
    const h = na().crypto_generichash(32, safetyCodeInput(pkA, pkB), null);
    const groups = [];
    for (let g = 0; g < SAFETY_GROUPS; g++) {
        let v = 0n;
        for (let i = 0; i < 5; i++) {
            v = (v << 8n) | BigInt(h[g * 5 + i]);
        }
        groups.push(String(v % 100000n).padStart(SAFETY_GROUP_DIGITS, '0'));
    }
    return groups.join(' ');
}

/**
 * Fingerprint of a public key (e.g. a study key) for people to compare: lowercase hex of
 * crypto_generichash(16, publicKey), in 8 groups of 4 separated by spaces.
 */
export function fingerprint(publicKey) {
    requireBytes(publicKey, PUBLIC_KEY_BYTES, 'public key');
    const hex = na().to_hex(na().crypto_generichash(FINGERPRINT_BYTES, publicKey, null));
    return hex.match(/.{4}/g).join(' ');
}

/* ---------------------------------------------------------------- question sets */

/**
 * Canonical JSON of a value made of objects, arrays, strings, safe integers, booleans and
 * null: no whitespace, object keys sorted by UTF-16 code units (byte order for the ASCII
 * keys of a question set), strings escaped as JSON.stringify escapes them. Anything else
 * (fractions, undefined, functions) is 'malformed'.
 */
export function canonicalJson(value) {
    if (value === null || typeof value === 'boolean' || typeof value === 'string') {
        return JSON.stringify(value);
    }
    if (typeof value === 'number') {
        if (!Number.isSafeInteger(value)) {
            throw new CryptoError('malformed', 'only safe integers have a canonical form');
        }
        return String(value);
    }
    if (Array.isArray(value)) {
        return `[${value.map(canonicalJson).join(',')}]`;
    }
    if (typeof value === 'object') {
        const keys = Object.keys(value).sort();
        return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`;
    }
    throw new CryptoError('malformed', `a ${typeof value} has no canonical JSON form`);
}

/** The bytes questionSetHash hashes: "thou2" 0 "set" 0 id 0 version 0 canonicalJson(set). */
export function questionSetInput(set) {
    if (set === null || typeof set !== 'object' || !Number.isSafeInteger(set.version)
        || set.version < 0) {
        throw new CryptoError('malformed', 'a question set needs an id and an integer version');
    }
    return joinFields([
        VERSION_TAG, 'set', textField(set.id, 'set id'), String(set.version),
        utf8Encoder.encode(canonicalJson(set)),
    ]);
}

/**
 * The hash of a question set as GET /api/sets/{id} returned it (32 bytes, unkeyed BLAKE2b
 * of questionSetInput): bound into key confirmation and every message's associated data,
 * so the two partners provably see the same wording under the same question ids.
 */
export function questionSetHash(set) {
    return na().crypto_generichash(SET_HASH_BYTES, questionSetInput(set), null);
}

/* ---------------------------------------------------------------- workshop safety code */

/** The bytes keyCommitment hashes: "thou2" 0 "commit" 0 room 0 pkA(32). */
export function keyCommitmentInput(roomId, pkA) {
    return joinFields([VERSION_TAG, 'commit', textField(roomId, 'room id'),
        requireBytes(pkA, PUBLIC_KEY_BYTES, 'public key A')]);
}

/**
 * Workshop mode: A's commitment to its public key (32 bytes, unkeyed BLAKE2b), sent before
 * B sends its key; A reveals its key only after B's arrived (docs/crypto.md §5a).
 */
export function keyCommitment(roomId, pkA) {
    return na().crypto_generichash(32, keyCommitmentInput(roomId, pkA), null);
}

/** The bytes shortSafetyCode hashes: "thou2" 0 "sas" 0 room 0 pkA(32) pkB(32). */
export function shortSafetyCodeInput(roomId, pkA, pkB) {
    return joinFields([VERSION_TAG, 'sas', textField(roomId, 'room id'),
        concatBytes(requireBytes(pkA, PUBLIC_KEY_BYTES, 'public key A'),
            requireBytes(pkB, PUBLIC_KEY_BYTES, 'public key B'))]);
}

/**
 * Workshop mode: the 6-digit code both partners compare, safe only with the commitment
 * order above: the big-endian integer of the first 8 bytes of BLAKE2b-256 of
 * shortSafetyCodeInput, modulo 10^6, zero-padded to 6 digits.
 */
export function shortSafetyCode(roomId, pkA, pkB) {
    const h = na().crypto_generichash(32, shortSafetyCodeInput(roomId, pkA, pkB), null);
    let v = 0n;
    for (let i = 0; i < 8; i++) {
        v = (v << 8n) | BigInt(h[i]);
    }
    return String(v % 1000000n).padStart(6, '0');
}

/* ---------------------------------------------------------------- messages */

/**
 * The associated data of a sealed message:
 *   "thou2" 0 kind 0 room 0 sender 0 counter(decimal, no leading zeros) 0 question 0 setHash(32)
 * kind defaults to "answer"; question may be "" (a note has none). UTF-8 throughout.
 */
export function messageAD({ kind = 'answer', roomId, sender, counter, question, setHash }) {
    return joinFields([
        VERSION_TAG, requireKind(kind), textField(roomId, 'room id'), requireRole(sender, 'sender'),
        String(requireCounter(counter)), textField(question, 'question', { allowEmpty: true }),
        requireBytes(setHash, SET_HASH_BYTES, 'set hash'),
    ]);
}

/**
 * Seal a message for the partner: base64url of nonce(24) || XChaCha20-Poly1305 ciphertext
 * of sodium_pad(UTF-8 plaintext, 256) with messageAD(fields), under my session `tx` key and
 * a fresh random nonce. `kind` (default "answer") names the event type; `setHash` is the
 * conversation's questionSetHash (so an answer cannot be shown under other wording); `counter` must be
 * strictly greater than every counter I used before in this room (persist it first).
 */
export function sealAnswer(txKey, {
    kind = 'answer', roomId, sender, counter, question, setHash, plaintext,
}) {
    requireBytes(txKey, KEY_BYTES, 'tx key');
    if (typeof plaintext !== 'string') {
        throw new CryptoError('malformed', 'plaintext must be a string');
    }
    const ad = messageAD({ kind, roomId, sender, counter, question, setHash });
    const s = na();
    const padded = s.pad(utf8Encoder.encode(plaintext), PAD_BLOCK);
    const nonce = s.randombytes_buf(NONCE_BYTES);
    const ciphertext = s.crypto_aead_xchacha20poly1305_ietf_encrypt(padded, ad, null, nonce, txKey);
    s.memzero(padded);
    return encodeB64(concatBytes(nonce, ciphertext));
}

/**
 * Open a message sealed by the partner with my session `rx` key and the fields the event
 * carries. Returns the plaintext string. Throws CryptoError 'malformed' if `sealed` or a
 * field is not well-formed, 'tampered' if authentication fails (wrong key, or ciphertext,
 * kind, room, sender, counter, question or set hash changed). With `guard` (a CounterGuard), also
 * throws 'replay' unless the counter is newer than the last accepted from `sender`, and
 * records it only once the message has opened.
 */
export function openAnswer(rxKey, {
    kind = 'answer', roomId, sender, counter, question, setHash, sealed,
}, guard) {
    requireBytes(rxKey, KEY_BYTES, 'rx key');
    const ad = messageAD({ kind, roomId, sender, counter, question, setHash });
    const bytes = decodeB64(sealed);
    if (bytes.length < NONCE_BYTES + AEAD_TAG_BYTES) {
        throw new CryptoError('malformed', 'sealed message is shorter than nonce and tag');
    }
    if (guard !== undefined) {
        guard.check(sender, counter);
    }
    const s = na();
    let padded;
    try {
        padded = s.crypto_aead_xchacha20poly1305_ietf_decrypt(
            null, bytes.subarray(NONCE_BYTES), ad, bytes.subarray(0, NONCE_BYTES), rxKey);
    } catch {
        throw new CryptoError('tampered', 'message failed authentication');
    }
    let plaintext;
    try {
        plaintext = utf8Decoder.decode(s.unpad(padded, PAD_BLOCK));
    } catch {
        throw new CryptoError('malformed', 'authenticated message has bad padding or UTF-8');
    } finally {
        s.memzero(padded);
    }
    if (guard !== undefined) {
        guard.accept(sender, counter);
    }
    return plaintext;
}

/**
 * Strictly increasing message counters per sender, for one room: rejects replayed and
 * reordered messages. Check before opening, accept only after a message opened (else a
 * forged huge counter would block the real ones); openAnswer(..., guard) does both.
 * Serialise with toObject() (a plain object for IndexedDB), restore with fromObject().
 */
export class CounterGuard {
    constructor() {
        this.last = { A: 0, B: 0 };
    }

    /** Throws CryptoError 'replay' unless `counter` is newer than the last accepted one. */
    check(sender, counter) {
        requireRole(sender, 'sender');
        requireCounter(counter);
        if (counter <= this.last[sender]) {
            throw new CryptoError('replay',
                `counter ${counter} from ${sender} is not newer than ${this.last[sender]}`);
        }
    }

    /** check(), then record `counter`. Returns how many counters were skipped (0 normally). */
    accept(sender, counter) {
        this.check(sender, counter);
        const skipped = counter - this.last[sender] - 1;
        this.last[sender] = counter;
        return skipped;
    }

    /**
     * Record `counter` as seen without the order check (a reveal releases answers written
     * before later notes; the caller checks them against a floor instead). Never lowers.
     */
    raise(sender, counter) {
        requireRole(sender, 'sender');
        requireCounter(counter);
        this.last[sender] = Math.max(this.last[sender], counter);
    }

    /** The last counter accepted from `sender` (0 if none). */
    lastAccepted(sender) {
        return this.last[requireRole(sender, 'sender')];
    }

    /** A plain, structured-clone and JSON safe object: { v: 1, last: { A, B } }. */
    toObject() {
        return { v: 1, last: { A: this.last.A, B: this.last.B } };
    }

    toJSON() {
        return this.toObject();
    }

    /** Restore from toObject(); throws CryptoError 'malformed' on anything else. */
    static fromObject(obj) {
        const ok = (n) => Number.isSafeInteger(n) && n >= 0;
        if (obj === null || typeof obj !== 'object' || obj.v !== 1 || obj.last === null
            || typeof obj.last !== 'object' || !ok(obj.last.A) || !ok(obj.last.B)) {
            throw new CryptoError('malformed', 'not a serialised CounterGuard');
        }
        const guard = new CounterGuard();
        guard.last = { A: obj.last.A, B: obj.last.B };
        return guard;
    }
}

/* ---------------------------------------------------------------- research copies */

/**
 * Seal a research copy to a study's public key with crypto_box_seal (anonymous sender;
 * only the study's secret key opens it). The UTF-8 plaintext is padded like answers.
 * Returns base64url. Put the context (room, sender, counter, question) inside the
 * plaintext: a sealed box has no associated data.
 */
export function sealForStudy(studyPublicKey, plaintext) {
    requireBytes(studyPublicKey, PUBLIC_KEY_BYTES, 'study public key');
    if (typeof plaintext !== 'string') {
        throw new CryptoError('malformed', 'plaintext must be a string');
    }
    const s = na();
    const padded = s.pad(utf8Encoder.encode(plaintext), PAD_BLOCK);
    const sealed = s.crypto_box_seal(padded, studyPublicKey);
    s.memzero(padded);
    return encodeB64(sealed);
}

/** A fresh X25519 key pair for crypto_box: a partner's copy key (docs/crypto.md §8). */
export function newCopyKeyPair() {
    const { publicKey, privateKey } = na().crypto_box_keypair();
    return { publicKey, privateKey };
}

/**
 * Box one research copy from this partner's copy key to the study's public key:
 * base64url( nonce(24) ‖ crypto_box_easy(sodium_pad(UTF-8(plaintext), 256), nonce, study_pk,
 * copy_sk) ). The copy key's public half travels in the partner's consent copy, sealed to the
 * study key, so the researcher opens every step with one key agreement per partner, and the
 * server, which never sees the copy key, can neither read nor forge a step.
 */
export function boxForStudy(studyPublicKey, copyPrivateKey, plaintext) {
    requireBytes(studyPublicKey, PUBLIC_KEY_BYTES, 'study public key');
    requireBytes(copyPrivateKey, KEY_BYTES, 'copy private key');
    if (typeof plaintext !== 'string') {
        throw new CryptoError('malformed', 'plaintext must be a string');
    }
    const s = na();
    const padded = s.pad(utf8Encoder.encode(plaintext), PAD_BLOCK);
    const nonce = s.randombytes_buf(s.crypto_box_NONCEBYTES);
    const boxed = s.crypto_box_easy(padded, nonce, studyPublicKey, copyPrivateKey);
    s.memzero(padded);
    const out = new Uint8Array(nonce.length + boxed.length);
    out.set(nonce);
    out.set(boxed, nonce.length);
    return encodeB64(out);
}

/** Inverse of boxForStudy with the study's secret key (researcher side, tests). */
export function openBoxForStudy(copyPublicKey, studySecretKey, boxedText) {
    requireBytes(copyPublicKey, PUBLIC_KEY_BYTES, 'copy public key');
    requireBytes(studySecretKey, KEY_BYTES, 'study secret key');
    const s = na();
    const bytes = decodeB64(boxedText);
    if (bytes.length < s.crypto_box_NONCEBYTES + s.crypto_box_MACBYTES) {
        throw new CryptoError('malformed', 'research copy is too short');
    }
    let padded;
    try {
        padded = s.crypto_box_open_easy(bytes.subarray(s.crypto_box_NONCEBYTES),
            bytes.subarray(0, s.crypto_box_NONCEBYTES), copyPublicKey, studySecretKey);
    } catch {
        throw new CryptoError('tampered', 'research copy failed authentication');
    }
    try {
        return utf8Decoder.decode(s.unpad(padded, PAD_BLOCK));
    } catch {
        throw new CryptoError('malformed', 'research copy has bad padding or UTF-8');
    }
}

/**
 * The pair tag both partners put into their research copies (docs/crypto.md §8): BLAKE2b-128
 * of "thou research pair v1" keyed with the two message keys, A's sending key first. Both
 * browsers compute the same tag; the server, without the keys, cannot, so the export can tell
 * that both consent copies of a conversation come from its two partners. Returns hex.
 */
export function researchPairTag(role, session) {
    if (role !== 'A' && role !== 'B') {
        throw new CryptoError('malformed', 'role must be A or B');
    }
    requireBytes(session.tx, KEY_BYTES, 'tx key');
    requireBytes(session.rx, KEY_BYTES, 'rx key');
    const [aToB, bToA] = role === 'A' ? [session.tx, session.rx] : [session.rx, session.tx];
    const key = new Uint8Array(2 * KEY_BYTES);
    key.set(aToB, 0);
    key.set(bToA, KEY_BYTES);
    const tag = na().crypto_generichash(16, utf8Encoder.encode('thou research pair v1'), key);
    na().memzero(key);
    return na().to_hex(tag);
}

/** Inverse of sealForStudy with the study's key pair (researcher side, tests). */
export function openForStudy(studyPublicKey, studySecretKey, sealed) {
    requireBytes(studyPublicKey, PUBLIC_KEY_BYTES, 'study public key');
    requireBytes(studySecretKey, KEY_BYTES, 'study secret key');
    const s = na();
    let padded;
    try {
        padded = s.crypto_box_seal_open(decodeB64(sealed), studyPublicKey, studySecretKey);
    } catch (e) {
        if (e instanceof CryptoError) {
            throw e;
        }
        throw new CryptoError('tampered', 'research copy failed authentication');
    }
    try {
        return utf8Decoder.decode(s.unpad(padded, PAD_BLOCK));
    } catch {
        throw new CryptoError('malformed', 'research copy has bad padding or UTF-8');
    }
}
