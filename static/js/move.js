// "Continue on another device" (docs/crypto.md §9c): what a seat's browser puts in the
// fragment of a one-time link so another browser can carry on as the same person, and how
// that browser turns it back into its room record. Pure functions; the page (room.js) asks
// the server to move the seat (POST /api/rooms/{room}/seat) with a token the new browser
// draws itself, so the link works once.
//
// Link: https://host/r/<room>#move.<base64url(payload)>, the payload being
//
//   0        format version, 1
//   1        flags: 1 role B · 2 keySent · 4 confirmSent · 8 partnerConfirmed ·
//                   16 setHash follows · 32 partnerKey follows · 64 secret S follows
//   2..33    the seat's bearer token (32 bytes)
//   34..65   the seat's X25519 private key (the public key is computed from it)
//   66..73   counter: the highest message counter this seat used, big-endian
//   74..81   highest opened counter of A, big-endian
//   82..89   highest opened counter of B, big-endian
//   then, in this order and only when flagged: setHash, partnerKey, S (32 bytes each)
//
// Every field has a fixed length, so the layout is unambiguous; anything else (another
// version, unknown flags, a wrong length, a counter above 2^53 - 1) is refused.

import sodium from '../vendor/libsodium-wrappers.mjs';
import { decodeB64, encodeB64 } from './crypto.js';

export const MOVE_PREFIX = 'move.';
const VERSION = 1;
const F_ROLE_B = 1;
const F_KEY_SENT = 2;
const F_CONFIRM_SENT = 4;
const F_PARTNER_CONFIRMED = 8;
const F_SET_HASH = 16;
const F_PARTNER_KEY = 32;
const F_SECRET = 64;
const FIXED = 90;
const BYTES = 32;

function putCounter(out, at, value) {
    if (!Number.isSafeInteger(value) || value < 0) {
        throw new Error('counter out of range');
    }
    new DataView(out.buffer, out.byteOffset).setBigUint64(at, BigInt(value));
}

function getCounter(bytes, at) {
    const value = new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(at);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
        throw new Error('counter out of range');
    }
    return Number(value);
}

function bytes32(value) {
    return value instanceof Uint8Array && value.length === BYTES;
}

/**
 * The payload of a move link for this browser's room record. `usedCounter` is the highest
 * counter this seat has used as far as the page knows (its record and its own events in the
 * log); the new browser starts above it and above its own events in the log.
 */
export function encodeMove(record, usedCounter) {
    if (!bytes32(record?.keyPair?.privateKey) || (record.role !== 'A' && record.role !== 'B')) {
        throw new Error('not a usable room record');
    }
    const optional = [
        [F_SET_HASH, record.setHash],
        [F_PARTNER_KEY, record.partnerKey],
        [F_SECRET, record.secret],
    ].filter(([, v]) => bytes32(v));
    let flags = optional.reduce((f, [bit]) => f | bit, 0);
    flags |= record.role === 'B' ? F_ROLE_B : 0;
    flags |= record.keySent ? F_KEY_SENT : 0;
    flags |= record.confirmSent ? F_CONFIRM_SENT : 0;
    flags |= record.partnerConfirmed ? F_PARTNER_CONFIRMED : 0;
    const out = new Uint8Array(FIXED + BYTES * optional.length);
    out[0] = VERSION;
    out[1] = flags;
    out.set(decodeB64(record.token, BYTES), 2);
    out.set(record.keyPair.privateKey, 34);
    putCounter(out, 66, Math.max(record.counter ?? 0, usedCounter ?? 0));
    putCounter(out, 74, record.highest?.A ?? 0);
    putCounter(out, 82, record.highest?.B ?? 0);
    optional.forEach(([, v], i) => out.set(v, FIXED + BYTES * i));
    return encodeB64(out);
}

/** The link another browser opens to continue as this seat. */
export function moveLink(origin, roomId, record, usedCounter) {
    return `${origin}/r/${encodeURIComponent(roomId)}#${MOVE_PREFIX}${encodeMove(record, usedCounter)}`;
}

/** True when a fragment ("#..." or "") is a move link's rather than a join link's. */
export function isMoveFragment(hash) {
    return (hash.startsWith('#') ? hash.slice(1) : hash).startsWith(MOVE_PREFIX);
}

/**
 * The seat a move fragment carries: {role, oldToken, keyPair, keySent, confirmSent,
 * partnerConfirmed, counter, highest, setHash?, partnerKey?, secret?}. Throws on anything
 * malformed. Requires crypto.ready().
 */
export function decodeMove(hash) {
    const text = (hash.startsWith('#') ? hash.slice(1) : hash);
    if (!text.startsWith(MOVE_PREFIX)) {
        throw new Error('not a move link');
    }
    const b = decodeB64(text.slice(MOVE_PREFIX.length));
    if (b.length < FIXED || b[0] !== VERSION || (b[1] & 0x80) !== 0) {
        throw new Error('not a move payload of this version');
    }
    const flags = b[1];
    const optional = [F_SET_HASH, F_PARTNER_KEY, F_SECRET].filter((bit) => flags & bit);
    if (b.length !== FIXED + BYTES * optional.length) {
        throw new Error('wrong length');
    }
    const privateKey = b.slice(34, 66);
    const seat = {
        role: flags & F_ROLE_B ? 'B' : 'A',
        oldToken: encodeB64(b.slice(2, 34)),
        keyPair: { publicKey: sodium.crypto_scalarmult_base(privateKey), privateKey },
        keySent: (flags & F_KEY_SENT) !== 0,
        confirmSent: (flags & F_CONFIRM_SENT) !== 0,
        partnerConfirmed: (flags & F_PARTNER_CONFIRMED) !== 0,
        counter: getCounter(b, 66),
        highest: { A: getCounter(b, 74), B: getCounter(b, 82) },
    };
    const names = { [F_SET_HASH]: 'setHash', [F_PARTNER_KEY]: 'partnerKey', [F_SECRET]: 'secret' };
    optional.forEach((bit, i) => {
        seat[names[bit]] = b.slice(FIXED + BYTES * i, FIXED + BYTES * (i + 1));
    });
    return seat;
}

/**
 * The room record the new browser saves before it claims the seat: the seat's keys and
 * counters, a token of its own (`newToken`, base64url of 32 random bytes), and `moving`,
 * the old token, until the server confirmed the move (a retry then sends the same hash).
 */
export function recordFromMove(roomId, seat, newToken, recordVersion, now, ttlMs) {
    const record = {
        v: recordVersion,
        room: roomId,
        role: seat.role,
        token: newToken,
        moving: seat.oldToken,
        keyPair: seat.keyPair,
        keySent: seat.keySent,
        confirmSent: seat.confirmSent,
        counter: seat.counter,
        outbox: [],
        highest: { ...seat.highest },
        created: now,
        expires: now + ttlMs,
        /* the move step is on the conversation screen, which comes after the welcome */
        welcomed: true,
    };
    if (seat.partnerConfirmed) {
        record.partnerConfirmed = true;
    }
    for (const name of ['setHash', 'partnerKey', 'secret']) {
        if (seat[name]) {
            record[name] = seat[name];
        }
    }
    return record;
}
