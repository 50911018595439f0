// Conversation links: https://host/r/<room-id>#<room secret S, base64url>. The fragment is
// never sent to the server; the room page reads it and removes it from the address bar.

import { decodeB64, encodeB64, ROOM_SECRET_BYTES } from './crypto.js';

const ROOM_ID_RE = /^[A-Za-z0-9_-]{8,64}$/;

/** The room id of a /r/<id> path, or null. */
export function roomIdFromPath(pathname) {
    const match = /^\/r\/([^/]+)\/?$/.exec(pathname);
    return match && ROOM_ID_RE.test(match[1]) ? match[1] : null;
}

/**
 * The room secret of a fragment ("#..." or ""): {secret} on success, {error: 'missing'} when
 * there is none, {error: 'malformed'} when it is not 32 bytes of unpadded base64url.
 * Requires crypto.ready().
 */
export function secretFromFragment(hash) {
    /* A study's fingerprint may follow the secret after a '.' (studyFromFragment). */
    const text = (hash.startsWith('#') ? hash.slice(1) : hash).split('.')[0];
    if (text === '') {
        return { error: 'missing' };
    }
    try {
        return { secret: decodeB64(text, ROOM_SECRET_BYTES) };
    } catch {
        return { error: 'malformed' };
    }
}

/** The full link for a room, to send to the partner. Requires crypto.ready(). */
export function roomLink(origin, roomId, secret, studyFingerprint = null) {
    const study = studyFingerprint ? `.${studyFingerprint.replaceAll(' ', '')}` : '';
    return `${origin}/r/${encodeURIComponent(roomId)}#${encodeB64(secret)}${study}`;
}

/**
 * The study key fingerprint a link carries after the secret ("#S.<32 hex digits>"), in the
 * spaced form crypto.fingerprint() gives, or null when there is none. The server never sees
 * the fragment, so it cannot put its own key in a study's place (docs/research.md).
 */
export function studyFromFragment(hash) {
    const parts = (hash.startsWith('#') ? hash.slice(1) : hash).split('.');
    if (parts.length !== 2 || !/^[0-9a-f]{32}$/.test(parts[1])) {
        return null;
    }
    return parts[1].match(/.{4}/g).join(' ');
}
