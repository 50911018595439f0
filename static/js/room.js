// The conversation page (/r/<room>#<secret>): the controller. It owns the page's one
// mutable store, turns the event stream into decrypted entries, drives key exchange and
// confirmation, sends through the outbox, and asks the views to render the store.
//
// Trust (DESIGN.md §2, docs/crypto.md): the secret in the fragment never leaves the browser;
// the partner's public key is used only once its MAC under the room's MAC key verified, and
// is then pinned in the room record for good (the secret is deleted once both keys are
// confirmed); the question set's hash is pinned too and bound into every MAC and AD;
// "private" is shown only once the partner's key confirmation verified. Every event a
// participant writes, control steps included, is sealed and checked. Anything failing those
// checks stops the conversation with a visible warning; history that went missing is shown.

import { saveDraft, openDrafts, clearDrafts } from './drafts.js';
import * as crypto from './crypto.js';
import * as api from './api.js';
import * as db from './db.js';
import { EventStreamReader } from './sse.js';
import { Outbox } from './outbox.js';
import { roomIdFromPath, secretFromFragment, studyFromFragment } from './link.js';
import { Research } from './research.js';
import { renderResearch } from './research-view.js';
import { isMoveFragment, decodeMove, recordFromMove, moveLink } from './move.js';
import {
    FLOW_TYPES, SEALED_TYPES, newLog, addEntry, counterStatus, markSeen, newFloors, noteQuestion,
    revealFloor,
} from './log.js';
import { S } from './strings.js';
import { announce } from './dom.js';
import { renderRoom } from './room-view.js';
import { WorkshopKeying } from './safety.js';
import * as workshopRoom from './workshop-room.js';

/** The page's whole mutable state. Views read it; only this module changes it. */
const store = {
    roomId: null,
    record: null,          /* the IndexedDB record (db.js) */
    macKey: null,
    set: null,             /* GET /api/sets/{id} */
    setHash: null,         /* crypto.questionSetHash(set), equal to the pinned one */
    questions: new Map(),  /* question id → {text, hint, reveal, stage} */
    room: null,            /* GET /api/rooms/{room}, refreshed after flow events */
    initialSeq: 0,         /* last_seq when the page opened: older events are history */
    keys: { A: null, B: null },
    partnerKeyVerified: false,
    session: null,         /* {tx, rx, confirmTx, confirmRx} */
    safetyCode: null,
    partnerConfirm: null,  /* a partner confirm that arrived before our session keys */
    confirmed: false,
    partnerJoined: false,
    partnerPresent: false,
    guard: new crypto.CounterGuard(),
    log: newLog(),
    local: new Map(),      /* outbox id → {type, question, text, counter, state, seq, error} */
    drafts: new Map(),     /* compose box key → text being written */
    connection: 'connecting', /* 'connecting' | 'open' | 'down' */
    online: navigator.onLine,
    sendTrouble: false,
    unreadable: 0,
    early: [],             /* partner reveal-together answers held until ours is written */
    rolledBack: false,     /* the log ended below what this browser saw before */
    historyChecked: false,
    seenMax: { A: 0, B: 0 }, /* highest counter opened per sender, on this page */
    floors: newFloors(),   /* counters where each question began (log.js) */
    fatal: null,           /* {kind, retry} for the error screen */
    tamper: null,          /* 'partnerKey' | 'partnerKeyChanged' | 'ownKey' | 'confirm' |
                              'setChanged' | 'forged' | 'replayed' */
    erased: false,
    ui: { adding: false, confirming: null, busy: false, lastStep: '', nudge: null },
    renderQueued: false,
    stream: null,
    outbox: null,
    refresh: { running: false, again: false, timer: null },
    research: null,        /* a Research (research.js) when the room is part of a study */
    workshop: null,        /* WorkshopKeying (safety.js) when the room is a workshop's */
    facilitator: null,     /* workshop: {note, timerEnds, released, ended} (workshop-room.js) */
    partnerGone: false,    /* workshop: the partner has been gone long enough to re-pair */
};

const partnerOf = (role) => (role === 'A' ? 'B' : 'A');
const me = () => store.record.role;

/** Draw the page from the store, once per burst of changes (a stream chunk carries many). */
function render() {
    if (store.renderQueued) {
        return;
    }
    store.renderQueued = true;
    queueMicrotask(() => {
        store.renderQueued = false;
        renderRoom(document.getElementById('app'), store, actions);
        renderResearch(document.getElementById('research'), store.research,
            { ready: store.confirmed, ended: store.room?.state === 'ended' });
    });
}

/* ---------------------------------------------------------------- failure screens */

function fail(kind, retry = null) {
    store.fatal = { kind, retry };
    stopEverything();
    render();
}

function failFromApi(error, retry) {
    if (error?.status === 404) {
        forgetRoom();
        return fail('unknownRoom');
    }
    if (error?.status === 410) {
        forgetRoom();
        return fail(error.code === 'room_ended' ? 'endedRoom' : 'goneRoom');
    }
    if (error?.status === 401) {
        /* A token that worked stops only when its seat moved to another device (move.js):
         * this browser's keys are of no use any more, so they go. */
        if (store.record && !store.record.joining && !store.record.moving) {
            forgetRoom();
            return fail('movedAway');
        }
        return fail('badToken');
    }
    if (error?.status === 429) {
        return fail('rateLimited', retry);
    }
    if (error?.status === 0) {
        return fail('network', retry);
    }
    return fail('server', retry);
}

function refuse(reason) {
    if (store.tamper) {
        return;
    }
    store.tamper = reason;
    /* Our own key and confirmation still go out if queued: they carry no secret, and
     * they let the partner's browser find the mismatch too instead of waiting forever.
     * Nothing else is sent. */
    const { record } = store;
    const keyExchange = record?.outbox.filter((i) => i.body.type === 'key'
        || i.body.type === 'confirm' || i.body.type === 'commit') ?? [];
    store.stream?.stop();
    if (keyExchange.length > 0 && store.outbox) {
        record.outbox.splice(0, record.outbox.length, ...keyExchange);
        persist().catch(() => {});
        store.outbox.pump();
    } else {
        store.outbox?.stop();
    }
    render();
}

function stopEverything() {
    store.stream?.stop();
    store.outbox?.stop();
}

/** Record fallback lifetime when the server's `expires` is not known yet (room_ttl_days). */
const RECORD_TTL_MS = 30 * 86400 * 1000;

function forgetRoom() {
    if (store.roomId) {
        db.deleteRoom(store.roomId).catch(() => {});
    }
}

function persist() {
    return db.putRoom(store.record);
}

/* ---------------------------------------------------------------- start-up */

async function main() {
    window.addEventListener('online', () => {
        store.online = true;
        store.stream?.nudge();
        store.outbox?.nudge();
        render();
    });
    window.addEventListener('offline', () => {
        store.online = false;
        render();
    });
    render();
    const roomId = roomIdFromPath(location.pathname);
    const hash = location.hash;
    if (hash) {
        // The secret is in memory now; it must not stay in the address bar or history.
        history.replaceState(null, '', location.pathname + location.search);
    }
    if (!roomId) {
        return fail('badRoomPath');
    }
    store.roomId = roomId;
    try {
        await crypto.ready();
    } catch {
        return fail('noCrypto');
    }
    try {
        await db.check();
        await db.sweep(Date.now());
    } catch {
        return fail('noStorage');
    }
    await withRoomLock(roomId, () => open(roomId, hash));
}

/** One tab per conversation in this browser: two would reuse message counters. */
async function withRoomLock(roomId, fn) {
    if (!navigator.locks) {
        await fn().catch(crash);
        return;
    }
    for (let attempt = 0; attempt < 6; attempt++) {
        const got = await new Promise((resolve) => {
            navigator.locks.request(`thou-room-${roomId}`, { ifAvailable: true }, (lock) => {
                if (!lock) {
                    resolve(false);
                    return undefined;
                }
                resolve(true);
                fn().catch(crash);
                return new Promise(() => {}); /* held while the page lives */
            });
        });
        if (got) {
            return;
        }
        await new Promise((r) => setTimeout(r, 300));
    }
    fail('otherTab', () => location.reload());
}

async function open(roomId, hash) {
    let record;
    try {
        record = await db.getRoom(roomId);
    } catch {
        return fail('noStorage');
    }
    if (record && record.v !== db.RECORD_VERSION) {
        /* Made for an earlier crypto format (docs/crypto.md, "thou1"): it cannot continue. */
        forgetRoom();
        return fail('oldVersion');
    }
    if (record?.moving) {
        /* A move whose answer never came back: claim again with the same token hash. */
        record = await moveIn(roomId, record);
        if (!record) {
            return undefined;
        }
    } else if (!record && isMoveFragment(hash)) {
        let seat;
        try {
            seat = decodeMove(hash);
        } catch {
            return fail('moveMalformed');
        }
        record = recordFromMove(roomId, seat, crypto.encodeB64(crypto.newRoomSecret()),
            db.RECORD_VERSION, Date.now(), RECORD_TTL_MS);
        try {
            await db.putRoom(record);
        } catch {
            return fail('noStorage');
        }
        record = await moveIn(roomId, record);
        if (!record) {
            return undefined;
        }
    } else if (record?.joining) {
        /* A join whose answer never came back: retry it with the same token hash. */
        record = await join(roomId, record.secret, record);
        if (!record) {
            return undefined;
        }
    } else if (!record) {
        const parsed = secretFromFragment(hash);
        if (parsed.error === 'missing') {
            return fail('missingSecret');
        }
        if (parsed.error) {
            return fail('malformedSecret');
        }
        record = await join(roomId, parsed.secret);
        if (!record) {
            return undefined;
        }
        /* The study key the invitation named, to hold the server's study key against. */
        record.studyFingerprint = studyFromFragment(hash);
        await persist().catch(() => {});
    }
    return begin(record);
}

/** Start (or restart, after a retried join) with this browser's record of the room. */
function begin(record) {
    record.outbox ??= [];
    store.fatal = null;
    store.record = record;
    record.highest ??= { A: 0, B: 0 };
    /* Once both keys are confirmed the secret is gone: the pinned key replaces the MAC. */
    store.macKey = record.secret ? crypto.deriveRoomKeys(record.secret).macKey : null;
    store.keys[record.role] = record.keyPair.publicKey;
    if (record.partnerKey) {
        store.keys[partnerOf(record.role)] = record.partnerKey;
        store.partnerKeyVerified = true;
    }
    store.confirmed = record.partnerConfirmed === true;
    store.partnerJoined = record.role === 'B' || record.partnerKey !== undefined;
    return load();
}

/**
 * Take the second seat. The browser draws its own token and sends only its hash, after
 * saving the record: if the answer is lost, the same hash joins again and the seat stays
 * one (docs/api.md). `pending` is such a saved record from an earlier try.
 */
async function join(roomId, secret, pending = null) {
    store.fatal = null;
    render();
    const { joinSecret } = crypto.deriveRoomKeys(secret);
    let record = pending;
    if (!record) {
        const token = crypto.encodeB64(crypto.newRoomSecret());
        record = {
            v: db.RECORD_VERSION,
            room: roomId,
            role: 'B',
            joining: true,
            token,
            secret,
            keyPair: crypto.newKeyPair(),
            keySent: false,
            confirmSent: false,
            counter: 0,
            outbox: [],
            highest: { A: 0, B: 0 },
            created: Date.now(),
            expires: Date.now() + RECORD_TTL_MS,
        };
        try {
            await db.putRoom(record);
        } catch {
            fail('noStorage');
            return null;
        }
    }
    const tokenHash = crypto.encodeB64(crypto.tokenHash(record.token));
    try {
        await api.joinRoom(roomId, crypto.encodeB64(joinSecret), tokenHash);
    } catch (error) {
        const again = () => join(roomId, secret, record).then((r) => r && begin(r));
        if (error.status === 409) {
            forgetRoom();
            fail('roomFull');
        } else if (error.status === 403) {
            forgetRoom();
            fail('badSecret');
        } else {
            failFromApi(error, again);
        }
        return null;
    }
    delete record.joining;
    try {
        await db.putRoom(record);
    } catch {
        fail('noStorage');
        return null;
    }
    return record;
}

/**
 * Take over a seat from another device (move.js): the record, saved first with the old
 * token in `moving`, claims the seat for this browser's own token; the old token stops
 * working at once, so the link works once. A lost answer is retried with the same hash.
 */
async function moveIn(roomId, record) {
    store.fatal = null;
    render();
    try {
        await api.moveSeat(roomId, record.moving,
            crypto.encodeB64(crypto.tokenHash(record.token)));
    } catch (error) {
        if (error.status === 401) {
            forgetRoom();
            fail('moveUsed');
        } else {
            failFromApi(error, () => moveIn(roomId, record).then((r) => r && begin(r)));
        }
        return null;
    }
    delete record.moving;
    try {
        await db.putRoom(record);
    } catch {
        fail('noStorage');
        return null;
    }
    return record;
}

async function load() {
    store.fatal = null;
    render();
    const { roomId, record } = store;
    let room;
    try {
        room = await api.getRoom(roomId, record.token);
    } catch (error) {
        return failFromApi(error, load);
    }
    if (!store.set || store.set.id !== room.set.id) {
        let set;
        try {
            set = await api.getSet(room.set.id);
        } catch (error) {
            return failFromApi(error.status === 404 ? { status: 500 } : error, load);
        }
        if (!pinSet(set, room)) {
            return undefined;
        }
        indexSet(set);
        if (record.title !== set.title) { /* for the start page's list of conversations */
            record.title = set.title;
            persist().catch(() => {});
        }
    }
    if (Number.isSafeInteger(room.expires) && room.expires !== record.expires) {
        record.expires = room.expires;
        persist().catch(() => {});
    }
    if (room.state === 'ended') {
        record.ended = true; /* no longer "in progress" on the start page */
        if (clearDrafts(record)) {
            persist().catch(() => {});
        }
    } else {
        await restoreDrafts(record);
    }
    store.room = room;
    if (room.study && !store.research) {
        store.research = newResearch(room.study);
    }
    if (room.mode === 'workshop' && !store.workshop) {
        store.workshop = new WorkshopKeying(roomId, record);
        store.facilitator = workshopRoom.fromRoom(room);
    }
    store.initialSeq = room.last_seq;
    store.partnerJoined = store.partnerJoined || room.partner.joined;
    store.partnerPresent = room.partner.present;
    if (store.keys.A && store.keys.B && !store.session) {
        startSession(); /* the partner's key is pinned: no need to wait for its event */
    }
    startOutbox();
    startStream();
    if (store.workshop) {
        workshopSend();
    } else if (!record.keySent) {
        sendControl({
            type: 'key',
            public_key: crypto.encodeB64(record.keyPair.publicKey),
            mac: crypto.encodeB64(crypto.macPublicKey(store.macKey, roomId, record.role,
                record.keyPair.publicKey)),
        });
    }
    render();
    return undefined;
}

/**
 * Check the question set against the room and against the hash pinned in the room record
 * (pinning it the first time). Its hash goes into every MAC and AD, so the partners also
 * find out if the server showed them different wording. False (and stopped) on a mismatch.
 */
function pinSet(set, room) {
    let hash;
    try {
        if (set?.id !== room.set.id || set?.version !== room.set.version) {
            throw new Error('another set');
        }
        hash = crypto.questionSetHash(set);
    } catch {
        refuse('setChanged');
        return false;
    }
    if (store.record.setHash && !sameBytes(store.record.setHash, hash)) {
        refuse('setChanged');
        return false;
    }
    store.setHash = hash;
    if (!store.record.setHash) {
        store.record.setHash = hash;
        persist().catch(() => {});
    }
    return true;
}

function indexSet(set) {
    store.set = set;
    store.questions.clear();
    set.stages.forEach((stage, stageIndex) => {
        for (const q of stage.questions) {
            store.questions.set(q.id, {
                text: q.text, hint: q.hint ?? null, reveal: q.reveal_together === true,
                stage: stageIndex,
            });
        }
    });
}

/* ---------------------------------------------------------------- the event stream */

function startStream() {
    store.stream = new EventStreamReader({
        /* From the start on a page load, so everything is decrypted again; a restart after
         * a retried load goes on from what this page has already seen. */
        lastId: store.log.lastSeq,
        idleMs: 65000,
        open: (lastId, signal) => api.openStream(store.roomId, store.record.token, lastId, signal),
        onOpen: () => {
            store.connection = 'open';
            if (store.log.lastSeq >= store.initialSeq) {
                checkHistory();
            }
            scheduleRefresh();
            render();
        },
        onDown: () => {
            store.connection = 'down';
            render();
        },
        onFatal: (error) => failFromApi(error, () => location.reload()),
        onEvent: (event) => {
            try {
                handleEvent(event);
            } catch (error) {
                console.error('thou: cannot handle event', error);
            }
        },
    }).start();
}

function handleEvent({ event: type, data: text }) {
    let data;
    try {
        data = JSON.parse(text);
    } catch {
        return;
    }
    if (data === null || typeof data !== 'object') {
        return;
    }
    if (type === 'presence') {
        if (data.role === partnerOf(me())) {
            store.partnerPresent = data.present === true;
            render();
        }
        return;
    }
    if (!Number.isSafeInteger(data.seq) || data.seq <= store.log.lastSeq) {
        return; /* already seen (a reconnect overlapping) */
    }
    store.log.lastSeq = data.seq;
    const live = data.seq > store.initialSeq;
    const role = data.role === 'A' || data.role === 'B' ? data.role : null;
    if (!role && (data.role === 'F' || data.sender === 'F')) {
        /* The facilitator's steps (workshops): flow metadata, never a message. */
        workshopRoom.onFacilitator(store, type, data, live);
        scheduleRefresh();
        render();
        return;
    }
    if (!role) {
        return;
    }
    if (FLOW_TYPES.has(type)) {
        store.log.lastFlowSeq = data.seq;
    }
    switch (type) {
    case 'key':
        onKey(data, role);
        break;
    case 'confirm':
        onConfirm(data, role);
        break;
    case 'commit':
        onCommit(data, role);
        break;
    case 'joined':
        store.research?.onStart(data.time);
        store.partnerJoined = true;
        if (live && me() === 'A') {
            announce(S.announceJoined);
        }
        scheduleRefresh();
        break;
    case 'answer':
    case 'reflect':
    case 'add':
    case 'note':
        onSealed(type, data, role, live);
        break;
    case 'reveal':
        onReveal(data, live);
        break;
    case 'confirm_heard':
    case 'pass':
        if (!onControl(type, data, role)) {
            break;
        }
        addEntry(store.log, { seq: data.seq, type, role, question: stringOr(data.question, null) });
        if (role === me()) {
            store.research?.onOwnStep({ kind: type, question: stringOr(data.question, null),
                text: '', counter: data.counter, time: data.time });
        }
        if (type === 'pass' && role === me()) {
            releaseEarly(stringOr(data.question, null));
        }
        if (live && role !== me()) {
            nudge('thread', type);
            announce(type === 'pass' ? S.announcePass : S.announceConfirm);
        }
        break;
    case 'consent':
    case 'decline':
    case 'withdraw':
        onStudyChoice(type, data, role);
        break;
    case 'go_on':
    case 'stay_here':
        if (onControl(type, data, role) && live && role !== me()) {
            /* The partner's choice is told once this person has made theirs, so nobody
             * chooses under the weight of the other's. */
            if (type === 'stay_here') {
                announce(S.announcePartnerStayed);
            }
        }
        break;
    case 'pause':
    case 'resume':
    case 'end':
        if (onControl(type, data, role) && live) {
            if (type === 'pause' && role !== me()) {
                nudge('pause', 'pause');
            }
            announce(type === 'pause' && role !== me() ? S.announcePartnerPaused
                : { pause: S.announcePaused, resume: S.announceResumed, end: S.announceEnded }[type]);
        }
        break;
    default:
        break; /* types this client does not use */
    }
    if (FLOW_TYPES.has(type)) {
        scheduleRefresh();
    }
    if (data.seq >= store.initialSeq) {
        checkHistory();
    }
    noteHighest();
    render();
}

/**
 * A sealed control step (pass, "that's it", pause, resume, end): it changes the course of
 * the conversation, so one that does not open (forged, or replayed under a new seq) stops
 * it. True when it is authentic and new.
 */
function onControl(type, data, role) {
    matchEcho(type, data, role);
    /* Steps about a question (a pass, "that's it", a stage vote) are sealed to it. */
    const question = ['pass', 'confirm_heard', 'go_on', 'stay_here'].includes(type)
        ? stringOr(data.question, '') : '';
    const text = openSealed({
        kind: type, sender: role, counter: data.counter, question, ciphertext: data.ciphertext,
        seq: data.seq,
    }, true);
    if (text === null || text === undefined) {
        refuse(store.replayed ? 'replayed' : 'forged');
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------- research studies */

function newResearch(study) {
    return new Research({
        roomId: store.roomId,
        role: me(),
        token: store.record.token,
        record: store.record,
        study,
        stageOf: (question) => store.set?.stages[store.questions.get(question)?.stage]?.id ?? null,
        session: () => store.session,
        sendSealed,
        persist,
        render,
    });
}

/**
 * A consent, decline or withdraw: sealed like a control step, so the server can neither
 * invent one nor pass off an old one as new; one that does not open stops the conversation.
 */
function onStudyChoice(type, data, role) {
    matchEcho(type, data, role);
    const text = openSealed({
        kind: type, sender: role, counter: data.counter, question: '', ciphertext: data.ciphertext,
        seq: data.seq,
    }, true);
    if (text === null) {
        refuse(store.replayed ? 'replayed' : 'forged');
        return;
    }
    if (text !== undefined) {
        store.research?.onChoice(role, type, text);
    }
}

/** Once the log has been replayed up to where the page opened: did it lose anything? */
function checkHistory() {
    if (store.historyChecked || !store.record) {
        return;
    }
    store.historyChecked = true;
    const { highest } = store.record;
    if (store.seenMax.A < highest.A || store.seenMax.B < highest.B) {
        store.rolledBack = true;
    }
}

/** Persist the highest counter opened per sender, once the replay has been checked. */
function noteHighest() {
    if (!store.historyChecked) {
        return;
    }
    const { highest } = store.record;
    if (store.seenMax.A > highest.A || store.seenMax.B > highest.B) {
        highest.A = Math.max(highest.A, store.seenMax.A);
        highest.B = Math.max(highest.B, store.seenMax.B);
        persist().catch(() => {});
    }
}

function stringOr(value, fallback) {
    return typeof value === 'string' ? value : fallback;
}

function sameBytes(a, b) {
    return a.length === b.length && a.every((x, i) => x === b[i]);
}

function onKey(data, role) {
    let publicKey;
    let mac;
    try {
        publicKey = crypto.decodeB64(data.public_key, crypto.PUBLIC_KEY_BYTES);
        mac = store.workshop ? null : crypto.decodeB64(data.mac);
    } catch {
        refuse(role === me() ? 'ownKey' : 'partnerKey');
        return;
    }
    if (role === me()) {
        // The server must show everyone the key this browser made, not another one.
        if (!sameBytes(publicKey, store.record.keyPair.publicKey)) {
            refuse('ownKey');
            return;
        }
        matchEcho('key', data, role);
        if (!store.record.keySent) {
            store.record.keySent = true;
            persist().catch(() => {});
            forgetSecret();
        }
        return;
    }
    store.partnerJoined = true;
    if (store.workshop) {
        /* No room secret in a workshop: the key is checked against A's commitment. */
        const reason = store.workshop.onKey(role, publicKey);
        if (reason) {
            refuse(reason);
            return;
        }
        if (!store.keys[role]) {
            store.keys[role] = publicKey;
            store.partnerKeyVerified = true;
            store.record.partnerKey = publicKey;
            persist().catch(() => {});
            startSession();
        }
        workshopSend();
        return;
    }
    if (store.keys[role] && store.partnerKeyVerified) {
        /* Pinned at first verification: no other key is ever accepted for this room. */
        if (!sameBytes(store.keys[role], publicKey)) {
            refuse('partnerKeyChanged');
        }
        return;
    }
    if (!store.macKey
        || !crypto.verifyPublicKey(store.macKey, store.roomId, role, publicKey, mac)) {
        refuse('partnerKey');
        return;
    }
    store.keys[role] = publicKey;
    store.partnerKeyVerified = true;
    store.record.partnerKey = publicKey;
    persist().catch(() => {});
    startSession();
}

/**
 * Both keys confirmed: the room secret has done its work (admission and key MACs), so it
 * leaves this browser; the pinned partner key stands in for the MAC from now on.
 */
function forgetSecret() {
    const { record } = store;
    if (!store.confirmed || !record.partnerKey || !record.keySent || !record.secret) {
        return;
    }
    delete record.secret;
    if (store.macKey) {
        crypto.wipe(store.macKey);
        store.macKey = null;
    }
    persist().catch(() => {});
}

function startSession() {
    const role = me();
    const partner = partnerOf(role);
    try {
        store.session = crypto.sessionKeys(role, store.record.keyPair, store.keys[partner]);
    } catch {
        refuse('partnerKey');
        return;
    }
    store.safetyCode = store.workshop ? store.workshop.code()
        : crypto.safetyCode(store.keys.A, store.keys.B);
    if (!store.record.confirmSent) {
        sendControl({
            type: 'confirm',
            mac: crypto.encodeB64(crypto.confirmationMac(store.session.confirmTx, store.roomId,
                role, store.keys.A, store.keys.B, store.setHash)),
        });
    }
    for (const [id, local] of store.local) {
        const item = store.record.outbox.find((i) => i.id === id);
        if (local.text === null && item?.body.ciphertext) {
            local.text = localFromItem(item).text;
        }
    }
    if (store.partnerConfirm) {
        const pending = store.partnerConfirm;
        store.partnerConfirm = null;
        verifyPartnerConfirm(pending);
    }
}

/** A's commitment to its key (workshops, docs/crypto.md §5a). */
function onCommit(data, role) {
    if (!store.workshop) {
        return;
    }
    let commitment;
    try {
        commitment = crypto.decodeB64(data.commitment, 32);
    } catch {
        refuse('commitment');
        return;
    }
    const reason = store.workshop.onCommit(role, commitment);
    if (reason) {
        refuse(reason);
        return;
    }
    if (role === me()) {
        matchEcho('commit', data, role);
        if (!store.record.commitSent) {
            store.record.commitSent = true;
        }
    }
    persist().catch(() => {});
    workshopSend();
}

/** Send the next step of the workshop key exchange, if one is due and not queued. */
function workshopSend() {
    if (!store.workshop || !store.outbox || store.tamper) {
        return;
    }
    const due = store.workshop.due();
    if (!due || store.record.outbox.some((i) => i.body.type === due)) {
        return;
    }
    if (due === 'commit') {
        sendControl({ type: 'commit',
            commitment: crypto.encodeB64(store.workshop.ownCommitment()) });
    } else {
        /* The server takes a `mac` with every key; a workshop has no MAC key, so the key's
         * own commitment fills it (docs/api.md). Nobody relies on it: B checks A's key
         * against the commitment A sent first, and the people compare the code. */
        const publicKey = store.record.keyPair.publicKey;
        sendControl({ type: 'key', public_key: crypto.encodeB64(publicKey),
            mac: crypto.encodeB64(crypto.keyCommitment(store.roomId, publicKey)) });
    }
}

function onConfirm(data, role) {
    if (role === me()) {
        matchEcho('confirm', data, role);
        if (!store.record.confirmSent) {
            store.record.confirmSent = true;
            persist().catch(() => {});
        }
        return;
    }
    if (!store.session) {
        store.partnerConfirm = data;
        return;
    }
    verifyPartnerConfirm(data);
}

function verifyPartnerConfirm(data) {
    let mac;
    try {
        mac = crypto.decodeB64(data.mac);
    } catch {
        refuse('confirm');
        return;
    }
    const ok = crypto.verifyConfirmation(store.session.confirmRx, store.roomId, partnerOf(me()),
        store.keys.A, store.keys.B, store.setHash, mac);
    if (!ok) {
        refuse('confirm');
        return;
    }
    if (!store.confirmed && store.log.lastSeq > store.initialSeq) {
        announce(S.announcePrivate);
    }
    store.confirmed = true;
    if (!store.record.partnerConfirmed) {
        store.record.partnerConfirmed = true;
        persist().catch(() => {});
    }
    forgetSecret();
}

/**
 * Open one sealed message; returns the plaintext, null (and counts it) if it cannot be, or
 * undefined if it is the very event already opened. The same message again under another
 * seq is a replay: store.replayed is set and null returned.
 */
function openSealed({ kind, sender, counter, question, ciphertext, seq }, useGuard) {
    const mine = sender === me();
    if (!store.session || !Number.isSafeInteger(counter) || typeof ciphertext !== 'string') {
        store.unreadable += 1;
        return null;
    }
    const status = counterStatus(store.log, sender, counter, ciphertext);
    if (status === 'duplicate') {
        if (seq !== undefined && seenSeq(sender, counter) !== seq && kind !== 'note') {
            store.replayed = true; /* an old step presented as a new one */
            return null;
        }
        return undefined; /* the same message again: already shown */
    }
    if (status === 'conflict') {
        store.unreadable += 1;
        return null;
    }
    try {
        const text = crypto.openAnswer(mine ? store.session.tx : store.session.rx, {
            kind, roomId: store.roomId, sender, counter, question, setHash: store.setHash,
            sealed: ciphertext,
        }, useGuard ? store.guard : undefined);
        markSeen(store.log, sender, counter, ciphertext, mine, seq);
        store.seenMax[sender] = Math.max(store.seenMax[sender], counter);
        if (question && useGuard) {
            noteQuestion(store.floors, question, {
                A: store.guard.lastAccepted('A'), B: store.guard.lastAccepted('B'),
            });
        }
        return text;
    } catch {
        store.unreadable += 1;
        return null;
    }
}

function seenSeq(sender, counter) {
    return store.log.seenSeq[sender].get(counter);
}

function onSealed(type, data, role, live) {
    const question = type === 'note' ? '' : stringOr(data.question, '');
    matchEcho(type, data, role);
    const text = openSealed({
        kind: type, sender: role, counter: data.counter, question, ciphertext: data.ciphertext,
        seq: data.seq,
    }, true);
    if (text === undefined) {
        return;
    }
    if (store.replayed) {
        refuse('replayed');
        return;
    }
    const entry = {
        seq: data.seq, type, role, question: question || null, text, counter: data.counter,
        unreadable: text === null, time: data.time,
    };
    if (type === 'answer' && role !== me() && store.questions.get(question)?.reveal
        && !wroteOwn(question)) {
        /* A reveal-together answer handed over before this person wrote theirs: the
         * server should have held it. This browser holds it instead, so the promise
         * "neither sees the other's answer before writing" does not rest on the server. */
        store.early.push(entry);
        return;
    }
    addEntry(store.log, entry);
    if (role === me() && text !== null) {
        store.research?.onOwnStep({ kind: type, question, text, counter: data.counter,
            time: data.time });
    }
    if (role === me() && type === 'answer') {
        releaseEarly(question);
    }
    if (live && role !== me() && text !== null) {
        nudge(type === 'note' ? 'note' : 'thread', type);
        const say = { answer: S.announceAnswer, reflect: S.announceReflect, add: S.announceAdd,
            note: S.announceNote }[type];
        announce(say(text.length > 300 ? `${text.slice(0, 300)}…` : text));
    }
}

/* ---------------------------------------------------------------- drafts */

/** Put the drafts kept in this browser back into their boxes. */
async function restoreDrafts(record) {
    try {
        const { texts, unreadable } = await openDrafts(record, store.roomId);
        for (const [name, text] of texts) {
            if (!store.drafts.has(`restore:${name}`)) {
                store.drafts.set(`restore:${name}`, text);
            }
        }
        if (unreadable > 0) {
            store.draftsUnreadable = true;
            persist().catch(() => {});
        }
    } catch {
        store.draftsUnreadable = true;
    }
}

/** Keep a draft, sealed, a moment after the last keystroke (one write per pause). */
function keepDraft(name, text) {
    store.draftTimers ??= new Map();
    clearTimeout(store.draftTimers.get(name));
    store.draftTimers.set(name, setTimeout(async () => {
        store.draftTimers.delete(name);
        if (!store.record || store.erased || store.room?.state === 'ended') {
            return;
        }
        try {
            await saveDraft(store.record, store.roomId, name, text);
            await persist();
        } catch {
            /* storage refused: the draft stays in memory for this visit */
        }
    }, text ? 400 : 0));
}

/** Something from the partner arrived: the view shows an indicator if it is out of sight. */
function nudge(kind, type) {
    store.ui.nudge = { kind, type };
}

/** Has this person answered or passed on `question` (as far as the log shows)? */
function wroteOwn(question) {
    return store.log.entries.some((e) => e.role === me() && e.question === question
        && (e.type === 'answer' || e.type === 'pass'));
}

/** Show the partner's early reveal-together answers once this person has written. */
function releaseEarly(question) {
    const ready = store.early.filter((e) => e.question === question);
    store.early = store.early.filter((e) => e.question !== question);
    for (const entry of ready) {
        addEntry(store.log, { ...entry, seq: store.log.lastSeq });
    }
}

function onReveal(data, live) {
    const question = stringOr(data.question, null);
    const answers = data.answers && typeof data.answers === 'object' ? data.answers : {};
    if (!question) {
        return;
    }
    /* The floor: each sender's last counter before this question began. */
    const floor = revealFloor(store.floors, question);
    for (const sender of ['A', 'B']) {
        const held = answers[sender];
        if (!held) {
            continue;
        }
        // Counters of privately written answers are older than what may have come since
        // (notes), so they are checked against the floor and for uniqueness, not against
        // the last counter.
        let text;
        if (!Number.isSafeInteger(held.counter) || held.counter <= floor[sender]) {
            store.unreadable += 1;
            text = null;
        } else {
            text = openSealed({
                kind: 'answer', sender, counter: held.counter, question,
                ciphertext: held.ciphertext,
            }, false);
        }
        if (text === undefined) {
            continue; /* my own answer, shown already */
        }
        if (text !== null) {
            store.guard.raise(sender, held.counter);
        }
        addEntry(store.log, {
            seq: data.seq, type: 'answer', role: sender, question, text, counter: held.counter,
            unreadable: text === null, revealed: true,
        });
    }
    store.log.revealed.set(question, data.seq);
    if (live) {
        announce(S.announceReveal);
    }
}

/* ---------------------------------------------------------------- room state */

function scheduleRefresh() {
    if (store.refresh.timer !== null) {
        return;
    }
    store.refresh.timer = setTimeout(() => {
        store.refresh.timer = null;
        refreshRoom();
    }, 0);
}

async function refreshRoom() {
    if (store.refresh.running) {
        store.refresh.again = true;
        return;
    }
    store.refresh.running = true;
    try {
        do {
            store.refresh.again = false;
            try {
                const room = await api.getRoom(store.roomId, store.record.token);
                store.room = room;
                store.partnerJoined = store.partnerJoined || room.partner.joined;
                if (room.state === 'ended' && clearDrafts(store.record)) {
                    persist().catch(() => {}); /* ended: no draft outlives it */
                }
            } catch (error) {
                if (!error.retryable) {
                    failFromApi(error);
                    return;
                }
                /* the stream's reconnect refreshes too; this covers a lone failed read */
                setTimeout(scheduleRefresh, 2000);
            }
        } while (store.refresh.again);
    } finally {
        store.refresh.running = false;
    }
    render();
}

/* ---------------------------------------------------------------- sending */

function startOutbox() {
    store.outbox = new Outbox({
        items: store.record.outbox,
        post: (body) => api.postEvent(store.roomId, store.record.token, body),
        persist,
        onSent: (item, seq) => {
            store.sendTrouble = false;
            if (item.body.type === 'commit') {
                store.record.commitSent = true;
                workshopSend();
            } else if (item.body.type === 'key') {
                store.record.keySent = true;
            } else if (item.body.type === 'confirm') {
                store.record.confirmSent = true;
            }
            persist().catch(() => {});
            const local = store.local.get(item.id);
            if (local) {
                local.state = 'sent';
                local.seq = seq;
            }
            if (FLOW_TYPES.has(item.body.type)) {
                scheduleRefresh();
            }
            render();
        },
        onTrouble: () => {
            store.sendTrouble = true;
            render();
        },
        onFailed: (item, error) => {
            const local = store.local.get(item.id);
            if (local) {
                local.state = 'failed';
                local.error = error?.code ?? 'other';
                if (local.text) {
                    store.drafts.set(`restore:${local.type}:${local.question ?? ''}`, local.text);
                }
            }
            store.sendTrouble = false;
            scheduleRefresh();
            render();
        },
        onFatal: (error) => failFromApi(error),
    });
    // Items left from before a reload: show them as sending again (they are sealed; open
    // them with our own key to show the text).
    for (const item of store.record.outbox) {
        store.local.set(item.id, localFromItem(item));
    }
    store.outbox.pump();
}

function localFromItem(item) {
    const { type, question, counter, ciphertext } = item.body;
    let text = null;
    if (ciphertext && store.session) {
        try {
            text = crypto.openAnswer(store.session.tx, {
                kind: type, roomId: store.roomId, sender: me(), counter,
                question: question ?? '', setHash: store.setHash, sealed: ciphertext,
            });
        } catch {
            text = null;
        }
    }
    return { type, question: question ?? null, text, counter, state: 'sending', seq: null };
}

/** The stream shows one of our own events: it is stored, whatever the POST said. */
function matchEcho(type, data, role) {
    if (role !== me()) {
        return;
    }
    for (const item of store.record.outbox) {
        const body = item.body;
        if (body.type !== type) {
            continue;
        }
        const same = SEALED_TYPES.has(type)
            ? body.counter === data.counter
            : (body.question ?? null) === (data.question ?? null) && data.seq > item.afterSeq;
        if (same) {
            store.outbox.markEchoed(item.id);
            break;
        }
    }
    for (const [id, local] of store.local) {
        const same = local.type === type && (SEALED_TYPES.has(type)
            ? local.counter === data.counter
            : local.seq === data.seq || (local.state !== 'failed'
                && (local.question ?? null) === (data.question ?? null)));
        if (same) {
            store.local.delete(id);
            break;
        }
    }
}

function newId() {
    return crypto.encodeB64(crypto.newRoomSecret().subarray(0, 12));
}

/** Queue one of the two events without ciphertext: key and confirm (the key exchange). */
function sendControl(body) {
    const item = { id: newId(), body, afterSeq: store.log.lastSeq };
    render();
    return store.outbox.add(item).catch(() => fail('noStorage'));
}

/**
 * Seal and queue a message. The counter is persisted (with the sealed item) before the
 * first attempt to send it, so it is never reused, even after a crash.
 */
async function sendSealed(type, question, text) {
    if (!store.session || store.tamper) {
        return;
    }
    if (store.workshop && store.record.codeConfirmed !== true) {
        /* Workshop rule (docs/crypto.md §5a): nothing is sealed before this person said the
         * two codes are the same. */
        return;
    }
    const counter = Math.max(store.record.counter, store.log.maxOwnCounter) + 1;
    store.record.counter = counter;
    const ciphertext = crypto.sealAnswer(store.session.tx, {
        kind: type, roomId: store.roomId, sender: me(), counter, question: question ?? '',
        setHash: store.setHash, plaintext: text,
    });
    const body = { type, ciphertext, counter };
    if (question) {
        body.question = question;
    }
    const item = { id: newId(), body, afterSeq: store.log.lastSeq };
    store.local.set(item.id, { type, question, text, counter, state: 'sending', seq: null });
    render();
    try {
        await store.outbox.add(item);
    } catch {
        fail('noStorage');
    }
}

/* ---------------------------------------------------------------- what the views may do */

const actions = {
    setDraft(key, text, name) {
        store.drafts.set(key, text);
        if (name) {
            keepDraft(name, text);
        }
    },
    compose(type, text, draftKey) {
        const question = store.room?.flow?.question;
        if (!question) {
            return;
        }
        store.drafts.delete(draftKey);
        store.drafts.delete(`restore:${type}:${question}`);
        keepDraft(`${type}:${question}`, '');
        store.ui.adding = false;
        sendSealed(type, question, text);
    },
    pass() {
        const question = store.room?.flow?.question;
        store.ui.adding = false;
        sendSealed('pass', question, '');
    },
    confirmHeard() {
        const question = store.room?.flow?.question;
        sendSealed('confirm_heard', question, '');
    },
    startAdding(on) {
        store.ui.adding = on;
        render();
    },
    note(text) {
        sendSealed('note', null, text);
    },
    pause() {
        sendSealed('pause', null, '');
    },
    vote(type) {
        const question = store.room?.flow?.question;
        if (question && (type === 'go_on' || type === 'stay_here')) {
            sendSealed(type, question, '');
        }
    },
    resume() {
        sendSealed('resume', null, '');
    },
    revealRead(question) {
        store.ui.revealRead = store.ui.revealRead ?? new Set();
        store.ui.revealRead.add(question);
        render();
    },
    welcomed() {
        store.record.welcomed = true;
        persist().catch(() => {}); /* at worst the welcome shows once more after a reload */
        render();
    },
    focusNote() {
        const input = document.querySelector('[data-testid=note-input]');
        input?.scrollIntoView({ block: 'center' });
        input?.focus({ preventScroll: true });
    },
    async showMove(on) {
        if (!on) {
            store.ui.move = null;
            render();
            return;
        }
        const link = moveLink(location.origin, store.roomId, store.record,
            store.log.maxOwnCounter);
        let qr = null;
        try {
            const { default: qrcode } = await import('../vendor/qrcode.mjs');
            const { qrSvg } = await import('./move-view.js');
            qr = qrSvg(qrcode, link);
        } catch {
            /* the link alone still works */
        }
        store.ui.move = { id: crypto.encodeB64(crypto.newRoomSecret()).slice(0, 8), link, qr };
        render();
    },
    async copyMove() {
        try {
            await navigator.clipboard.writeText(store.ui.move?.link ?? '');
        } catch {
            document.querySelector('[data-testid=move-link]')?.select();
        }
    },
    askConfirm(what) {
        store.ui.confirming = what;
        render();
    },
    end() {
        store.ui.confirming = null;
        sendSealed('end', null, '');
    },
    async erase() {
        store.ui.busy = true;
        render();
        try {
            await api.eraseRoom(store.roomId, store.record.token);
        } catch (error) {
            store.ui.busy = false;
            if (error.status === 410 || error.status === 404) {
                forgetRoom();
                fail('goneRoom');
                return;
            }
            failFromApi(error, () => location.reload());
            return;
        }
        stopEverything();
        try {
            await db.deleteRoom(store.roomId);
        } catch {
            /* the server copy is gone; a stale local record only holds keys */
        }
        store.erased = true;
        store.ui.busy = false;
        render();
    },
    retry() {
        const retry = store.fatal?.retry;
        store.fatal = null;
        if (retry) {
            retry();
        } else {
            location.reload();
        }
    },
    sameCode(same) {
        store.record.codeConfirmed = same;
        persist().catch(() => {});
        if (same) {
            announce(S.wsCodeConfirmed);
        }
        render();
    },
    findNewPartner() {
        workshopRoom.findNewPartner(store, { fail: failFromApi, render });
    },
    finishAlone() {
        store.ui.confirming = null;
        store.partnerGone = false;
        sendSealed('end', null, '');
    },
    noteStep(stepKey, mine) {
        if (stepKey !== store.ui.lastStep) {
            const first = store.ui.lastStep === '';
            store.ui.lastStep = stepKey;
            if (!first && mine) {
                announce(S.announceYourTurn);
            }
        }
    },
};

window.addEventListener('unhandledrejection', (event) => {
    console.error('thou:', event.reason);
});

function crash(error) {
    console.error('thou:', error);
    fail('unexpected', () => location.reload());
}

main().catch(crash);
