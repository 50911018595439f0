// The conversation page in a facilitated workshop: what the facilitator's steps change in
// the store (note, countdown, stage released, pause, end), the partner who is gone, and
// "find a new partner". room.js calls these; views read store.facilitator and
// store.partnerGone. Flow metadata only: the facilitator never sends a message.

import * as api from './api.js';
import * as crypto from './crypto.js';
import { announce } from './dom.js';
import { S } from './strings.js';
import { REJOIN_CODE, saveWaiting, enterRoom } from './workshop-join.js';

/** The facilitator's part of GET /api/rooms/{room} (`workshop`), as the store keeps it. */
export function fromRoom(room) {
    const w = room.workshop ?? {};
    return {
        title: typeof w.title === 'string' ? w.title : '',
        code: typeof w.code === 'string' ? w.code : null,
        note: typeof w.note === 'string' && w.note !== '' ? w.note : null,
        timerEnds: Number.isSafeInteger(w.timer_ends) ? w.timer_ends : null,
        released: Number.isSafeInteger(w.released) ? w.released : null,
        ended: w.ended === true,
    };
}

/** A stored event from the facilitator (sender "F"): `facilitator` or `partner_gone`. */
export function onFacilitator(store, type, data, live) {
    const f = store.facilitator ?? (store.facilitator = fromRoom({}));
    if (type === 'partner_gone' || (type === 'facilitator' && data.action === 'partner_gone')) {
        /* About the partner only (`gone` names who left); one who came back clears it: the
         * view shows it only while the partner is not present. */
        if (data.gone === store.record.role) {
            return;
        }
        store.partnerGone = store.room?.state !== 'ended';
        if (live) {
            announce(S.wsPartnerGoneTitle);
        }
        return;
    }
    if (type !== 'facilitator') {
        return;
    }
    switch (data.action) {
    case 'note':
        f.note = typeof data.text === 'string' && data.text !== '' ? data.text : null;
        if (live && f.note) {
            announce(S.wsAnnounceNote(f.note));
        }
        break;
    case 'timer':
        f.timerEnds = Number.isSafeInteger(data.ends) && data.ends > 0 ? data.ends : null;
        if (live && f.timerEnds) {
            announce(S.wsAnnounceTimer(minutesLeft(f.timerEnds)));
        }
        break;
    case 'release':
        if (Number.isSafeInteger(data.stage_cap)) {
            f.released = data.stage_cap;
        }
        if (live) {
            announce(S.wsAnnounceReleased);
        }
        break;
    case 'pause':
        if (live) {
            announce(S.wsAnnouncePaused);
        }
        break;
    case 'resume':
        if (live) {
            announce(S.announceResumed);
        }
        break;
    case 'end':
        f.ended = true;
        store.partnerGone = false;
        if (live) {
            announce(S.announceEnded);
        }
        break;
    default:
        break;
    }
}

function minutesLeft(ends) {
    return Math.max(1, Math.ceil((ends - Date.now()) / 60000));
}

/**
 * "Find a new partner": back into the workshop's queue with a new seat token. The new
 * token's hash goes with the old room's token (docs/api.md, rejoin); then either straight
 * into the new room, or to the join page's waiting screen.
 */
export async function findNewPartner(store, { fail, render }) {
    store.ui.busy = true;
    render();
    const token = crypto.encodeB64(crypto.newRoomSecret());
    let answer;
    try {
        answer = await api.rejoinWorkshop(store.record.token,
            crypto.encodeB64(crypto.tokenHash(token)));
    } catch (error) {
        store.ui.busy = false;
        fail(error, () => findNewPartner(store, { fail, render }));
        return;
    }
    if (answer.status === 'paired' && answer.room) {
        await enterRoom(answer.room, answer.role, token);
        return;
    }
    /* The join page serves any /w/{code}; with a seat kept for it, it only waits. */
    saveWaiting(REJOIN_CODE, { token, participant: answer.participant,
        title: answer.title ?? store.facilitator?.title ?? '' });
    location.assign(`/w/${REJOIN_CODE}`);
}
