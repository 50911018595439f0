// The start page's list of this device's conversations in progress, from the browser's
// own storage (db.js): nothing about them is asked of the server until one is opened.

import { h } from './dom.js';
import { S } from './strings.js';

/**
 * The records worth listing, newest first: not expired, not ended, not half-joined or
 * half-moved (opening those finishes them, but they are not conversations yet).
 */
export function inProgress(records, now) {
    return records
        .filter((r) => r && typeof r.room === 'string' && !r.ended && !r.joining && !r.moving
            && Number.isFinite(r.expires) && r.expires > now)
        .sort((a, b) => (b.created ?? 0) - (a.created ?? 0));
}

/** The section listing them, or null when there are none. */
export function myRoomsView(records, locale) {
    if (!records.length) {
        return null;
    }
    const date = (ms) => new Date(ms).toLocaleDateString(locale,
        { day: 'numeric', month: 'short' });
    return h('section', { class: 'card my-rooms', testid: 'my-rooms',
        'aria-labelledby': 'my-rooms-title' },
    h('h2', { id: 'my-rooms-title', text: S.myRooms.title }),
    h('p', { class: 'quiet', text: S.myRooms.lead }),
    h('ul', { class: 'my-rooms-list' }, records.map((r) => h('li', { testid: 'my-room' },
        h('span', { text: S.myRooms.item(r.title, r.role, date(r.created ?? Date.now())) }),
        ' ',
        h('a', { class: 'button button--secondary', href: `/r/${encodeURIComponent(r.room)}`,
            testid: 'my-room-open', text: S.myRooms.open })))));
}
