// A workshop participant between joining and the room: the seat token kept while waiting
// (sessionStorage, this tab only: it opens nothing but the queue), and the step into the
// room once paired, with a room record shaped as room.js expects (db.js).

import * as crypto from './crypto.js';
import * as db from './db.js';

const KEY_PREFIX = 'thou-workshop-';

/** The join page's path after "find a new partner": no code to post, only a seat to wait on. */
export const REJOIN_CODE = 'AGAIN';

/** Workshop codes are read case-insensitively, without dashes or spaces (docs/api.md). */
export function normaliseCode(text) {
    return String(text ?? '').toUpperCase().replace(/[\s-]+/g, '');
}

/** "K7QM3XPA" → "K7QM-3XPA", as the projector shows it. */
export function groupWorkshopCode(code) {
    const c = normaliseCode(code);
    return c.length === 8 ? `${c.slice(0, 4)}-${c.slice(4)}` : c;
}

/** Keep {token, participant, title} for the waiting screen of `code` (survives a reload). */
export function saveWaiting(code, value) {
    try {
        sessionStorage.setItem(KEY_PREFIX + normaliseCode(code), JSON.stringify(value));
    } catch {
        /* storage refused: a reload draws a new token and joins the queue again */
    }
}

export function loadWaiting(code) {
    try {
        const value = JSON.parse(sessionStorage.getItem(KEY_PREFIX + normaliseCode(code)));
        return value && typeof value.token === 'string' ? value : null;
    } catch {
        return null;
    }
}

export function clearWaiting(code) {
    try {
        sessionStorage.removeItem(KEY_PREFIX + normaliseCode(code));
    } catch {
        /* nothing kept */
    }
}

/** A fresh seat token (32 random bytes, base64url) and the hash the server keeps. */
export function newSeatToken() {
    const token = crypto.encodeB64(crypto.newRoomSecret());
    return { token, tokenHash: crypto.encodeB64(crypto.tokenHash(token)) };
}

/** Record fallback lifetime until the room page reads the server's `expires`. */
const RECORD_TTL_MS = 30 * 86400 * 1000;

/**
 * Paired: save the room record (the seat token is the room's bearer token; a new key pair;
 * no room secret: the key exchange is checked by the safety code instead) and go there.
 * A record that already exists (a reload after pairing) is kept as it is.
 */
export async function enterRoom(room, role, token) {
    const existing = await db.getRoom(room).catch(() => null);
    if (!existing) {
        await db.putRoom({
            v: db.RECORD_VERSION,
            room,
            role,
            token,
            workshop: true,
            keyPair: crypto.newKeyPair(),
            keySent: false,
            confirmSent: false,
            counter: 0,
            outbox: [],
            highest: { A: 0, B: 0 },
            created: Date.now(),
            expires: Date.now() + RECORD_TTL_MS,
        });
    }
    location.assign(`/r/${encodeURIComponent(room)}`);
}
