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
    const text = hash.startsWith('#') ? hash.slice(1) : hash;
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
export function roomLink(origin, roomId, secret) {
    return `${origin}/r/${encodeURIComponent(roomId)}#${encodeB64(secret)}`;
}
