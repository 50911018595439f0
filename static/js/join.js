// The workshop join page (/w/<code>): what happens, "Join", then a kind waiting screen on
// the wait stream until a partner arrives, then the room (/r/<room>).
//
// Joining draws a seat token in this browser and sends only its hash (as a room join
// does); the token is kept in sessionStorage while waiting, so a reload keeps the place,
// and becomes the room's bearer token once paired (workshop-join.js).

import * as api from './api.js';
import { h, replace, keyed, focus, announce } from './dom.js';
import { EventStreamReader } from './sse.js';
import { S } from './strings.js';
import {
    REJOIN_CODE, normaliseCode, groupWorkshopCode, saveWaiting, loadWaiting, clearWaiting,
    newSeatToken, enterRoom,
} from './workshop-join.js';

/* The crypto module (libsodium) is needed only to draw the token: it loads beside the page. */
const cryptoReady = import('./crypto.js').then(async (c) => {
    await c.ready();
    return c;
});

/** The page's whole mutable state. */
const store = {
    code: '',             /* normalised code from the path (or typed after an error) */
    screen: 'join',       /* 'join' | 'joining' | 'waiting' | 'paired' | 'ended' */
    error: null,          /* {code, retryAfter} */
    seat: null,           /* {token, participant, title} */
    waiting: null,        /* people in the queue, from the wait stream */
    connection: 'open',
    note: null,
    timerEnds: null,
    stream: null,
};

function skeleton(root) {
    if (root.dataset.built) {
        return;
    }
    root.dataset.built = '1';
    replace(root,
        h('a', { class: 'skip-link', href: '#main', text: S.skipToContent }),
        h('header', { class: 'site-header' },
            h('span', { class: 'brand', text: S.appName }),
            h('span', { class: 'tagline', text: S.tagline })),
        h('main', { id: 'main', class: 'page', tabindex: '-1', testid: 'screen' }));
}

function render() {
    const root = document.getElementById('app');
    skeleton(root);
    const main = root.querySelector('main');
    main.dataset.screen = store.screen;
    const key = [store.screen, store.error?.code, store.waiting, store.connection, store.note,
        store.timerEnds, store.seat?.title].join('|');
    const screenChanged = main.dataset.shown !== store.screen;
    main.dataset.shown = store.screen;
    if (keyed(main, key, view) && screenChanged) {
        focus(main.querySelector('h1'));
    }
}

function view() {
    switch (store.screen) {
    case 'waiting':
        return waitingView();
    case 'paired':
        return h('section', { class: 'card join-card', testid: 'paired' },
            h('h1', { text: S.pairedTitle }),
            h('p', { text: S.pairedLead }),
            h('p', { class: 'waiting-pulse', 'aria-hidden': 'true' }));
    case 'ended':
        return errorCard('workshop_ended');
    default:
        return joinView();
    }
}

function joinView() {
    const busy = store.screen === 'joining';
    const parts = [];
    if (store.error) {
        parts.push(errorCard(store.error.code));
    }
    const askCode = store.error?.code === 'no_such_workshop' || store.code === '';
    parts.push(h('section', { class: 'card join-card', testid: 'join' },
        store.error ? h('h2', { text: S.joinTitle }) : h('h1', { text: S.joinTitle }),
        h('p', { class: 'lead', text: S.joinLead }),
        h('ol', { class: 'how-steps' }, S.joinSteps.map((t) => h('li', { text: t }))),
        h('form', { class: 'join-form', onsubmit: (e) => { e.preventDefault(); join(e.target); } },
            askCode ? codeField() : h('p', { class: 'join-code' },
                h('span', { class: 'label', text: `${S.joinCodeLabel}: ` }),
                h('strong', { testid: 'join-code', text: groupWorkshopCode(store.code) })),
            h('div', { class: 'buttons' },
                h('button', { type: 'submit', class: 'button button--large', testid: 'join-button',
                    disabled: busy, text: busy ? S.joining : S.joinButton })))));
    return parts;
}

function codeField() {
    return h('p', { class: 'field' },
        h('label', { for: 'join-code-input', text: S.joinCodeLabel }),
        h('input', { id: 'join-code-input', name: 'code', class: 'code-input', required: true,
            autocomplete: 'off', autocapitalize: 'characters', spellcheck: 'false',
            maxlength: '20', value: groupWorkshopCode(store.code), testid: 'join-code-input' }));
}

function errorCard(code) {
    const text = S.joinErrors[code] ?? S.joinErrors.other;
    return h('section', { class: 'card card--notice', role: 'alert', testid: 'join-error',
        dataset: { code } },
        h('h1', { text: text.title }),
        h('p', { text: text.body }));
}

function waitingView() {
    const seat = store.seat;
    return h('section', { class: 'card join-card waiting-card', testid: 'waiting' },
        seat?.title ? h('p', { class: 'workshop-title', testid: 'workshop-title', text: seat.title })
            : null,
        h('h1', { text: S.waitTitle }),
        h('p', { class: 'lead', text: S.waitLead }),
        h('p', { class: 'waiting-pulse', 'aria-hidden': 'true' }),
        store.waiting ? h('p', { testid: 'waiting-count', text: S.waitCount(store.waiting) }) : null,
        h('p', { class: 'quiet', text: store.connection === 'down' ? S.waitReconnecting
            : S.waitKeepOpen }),
        store.note ? h('p', { class: 'facilitator-note' },
            h('span', { class: 'label', text: `${S.wsFromFacilitator}: ` }),
            h('span', { testid: 'facilitator-note', text: store.note })) : null);
}

/* ---------------------------------------------------------------- joining and waiting */

async function join(form) {
    const typed = form?.elements?.code?.value;
    if (typed !== undefined) {
        store.code = normaliseCode(typed);
    }
    if (!store.code || store.screen === 'joining') {
        return;
    }
    store.screen = 'joining';
    store.error = null;
    render();
    let crypto;
    try {
        crypto = await cryptoReady;
    } catch {
        store.screen = 'join';
        store.error = { code: 'other' };
        render();
        return;
    }
    /* A seat drawn before (a lost answer, a reload) is used again: the same hash keeps one
     * place in the queue. */
    const kept = loadWaiting(store.code);
    const token = kept?.token ?? newSeatToken().token;
    const tokenHash = crypto.encodeB64(crypto.tokenHash(token));
    saveWaiting(store.code, { token });
    let answer;
    try {
        answer = await api.joinWorkshop(store.code, tokenHash);
    } catch (error) {
        if (error.code === 'no_such_workshop' || error.code === 'workshop_ended'
            || error.code === 'workshop_full') {
            clearWaiting(store.code);
        }
        store.screen = error.code === 'workshop_ended' ? 'ended' : 'join';
        store.error = { code: error.status === 0 ? 'network' : error.code,
            retryAfter: error.retryAfter };
        render();
        return;
    }
    store.seat = { token, participant: answer.participant, title: answer.title ?? '' };
    saveWaiting(store.code, store.seat);
    if (answer.status === 'paired' && answer.room) {
        paired(answer.room, answer.role);
        return;
    }
    wait();
}

function wait() {
    store.screen = 'waiting';
    render();
    store.stream?.stop();
    store.stream = new EventStreamReader({
        idleMs: 65000,
        open: (_lastId, signal) => api.openWaitStream(store.seat.token, signal),
        onOpen: () => {
            store.connection = 'open';
            render();
        },
        onDown: () => {
            store.connection = 'down';
            render();
        },
        onFatal: () => {
            /* The seat is unknown (401): start again with a fresh one. */
            store.stream?.stop();
            clearWaiting(store.code);
            store.seat = null;
            store.screen = 'join';
            store.error = store.code === REJOIN_CODE ? null : { code: 'other' };
            render();
        },
        onEvent: ({ event, data }) => {
            let body;
            try {
                body = JSON.parse(data);
            } catch {
                return;
            }
            onWaitEvent(event, body ?? {});
        },
    }).start();
}

function onWaitEvent(event, body) {
    switch (event) {
    case 'waiting':
        if (Number.isSafeInteger(body.waiting)) {
            store.waiting = body.waiting;
        }
        break;
    case 'paired':
        if (typeof body.room === 'string' && (body.role === 'A' || body.role === 'B')) {
            paired(body.room, body.role);
        }
        return;
    case 'note':
        store.note = typeof body.text === 'string' && body.text !== '' ? body.text : null;
        if (store.note) {
            announce(S.wsAnnounceNote(store.note));
        }
        break;
    case 'timer':
        store.timerEnds = Number.isSafeInteger(body.ends) ? body.ends : null;
        break;
    case 'ended':
        store.stream?.stop();
        clearWaiting(store.code);
        store.screen = 'ended';
        break;
    default:
        return;
    }
    render();
}

function paired(room, role) {
    store.stream?.stop();
    store.screen = 'paired';
    announce(S.pairedTitle);
    render();
    /* A moment to read "Your partner is here", then the room. */
    setTimeout(async () => {
        try {
            await enterRoom(room, role, store.seat.token);
            clearWaiting(store.code);
        } catch {
            store.screen = 'join';
            store.error = { code: 'other' };
            render();
        }
    }, 900);
}

function main() {
    const match = /^\/w\/([^/]*)\/?$/.exec(location.pathname);
    store.code = normaliseCode(match ? decodeURIComponent(match[1]) : '');
    document.title = S.joinPageTitle;
    const kept = loadWaiting(store.code);
    if (kept?.participant) {
        /* A reload while waiting (or "find a new partner"): back on the wait stream. */
        store.seat = kept;
        wait();
        return;
    }
    if (store.code === REJOIN_CODE) {
        store.code = '';
    }
    render();
}

main();
