// The start page (/): choose a question set, create a conversation, get the link.
//
// Creating: the browser draws the room secret S (crypto.newRoomSecret), sends only the join
// verifier derived from it (POST /api/rooms), and keeps S, the token and a fresh key pair in
// IndexedDB. The link carries S in its fragment, which browsers never send to a server.

import * as api from './api.js';
import * as db from './db.js';
import { h, replace, keyed, focus } from './dom.js';
import { linkBox } from './widgets.js';
import { inProgress, myRoomsView } from './my-rooms.js';
import { S } from './strings.js';

/* Only creating needs the crypto module, and libsodium is most of the page's bytes: it
 * loads beside the page rather than before it, so the sets can be chosen sooner. */
const later = Promise.all([import('./crypto.js'), import('./link.js')]);

const PREFERRED_SET = 'couples-short';

/** The page's whole mutable state. */
const store = {
    sets: null,
    setsError: null,
    chosen: null,
    creating: false,
    createError: null,
    created: null, /* {room, link} */
    /* ?study=NAME: the conversation is part of a research study (docs/research.md) */
    study: /^[a-z0-9][a-z0-9_-]{0,63}$/.test(new URLSearchParams(location.search).get('study') ?? '')
        ? new URLSearchParams(location.search).get('study') : null,
    mine: [],      /* this browser's conversations in progress (my-rooms.js) */
};

function skeleton(root) {
    if (root.dataset.built) {
        return;
    }
    root.dataset.built = '1';
    replace(root,
        h('a', { class: 'skip-link', href: '#main', text: S.skipToContent }),
        h('header', { class: 'site-header' },
            h('a', { class: 'brand', href: '/', text: S.appName }),
            h('span', { class: 'tagline', text: S.tagline })),
        h('main', { id: 'main', class: 'page', tabindex: '-1', testid: 'screen' }));
}

function render() {
    const root = document.getElementById('app');
    skeleton(root);
    const main = root.querySelector('main');
    if (store.created) {
        main.dataset.screen = 'ready';
        if (keyed(main, `ready|${store.created.room}`, readyView)) {
            focus(main.querySelector('h1'));
        }
        return;
    }
    main.dataset.screen = 'start';
    const key = ['start', store.sets ? store.sets.length : 'none', store.setsError,
        store.creating, store.createError?.code, store.mine.length].join('|');
    keyed(main, key, startView);
}

function startView() {
    return [
        h('section', { class: 'intro' },
            h('h1', { text: S.startTitle }),
            h('p', { class: 'lead', text: S.startLead })),
        myRoomsView(store.mine),
        h('section', { class: 'card how', 'aria-labelledby': 'how-title' },
            h('h2', { id: 'how-title', text: S.howTitle }),
            h('ol', { class: 'how-steps' }, S.howSteps.map((t) => h('li', { text: t })))),
        store.study ? h('p', { class: 'card card--notice', testid: 'study-note',
            text: S.research.startNote(store.study) }) : null,
        setChooser(),
    ];
}

function setChooser() {
    if (store.setsError) {
        return h('section', { class: 'card card--notice', testid: 'start-error', role: 'alert' },
            h('p', { text: S.setsFailed }),
            h('button', { type: 'button', class: 'button', text: S.tryAgain,
                onclick: loadSets }));
    }
    if (!store.sets) {
        return h('p', { class: 'quiet', text: S.setsLoading });
    }
    const error = store.createError;
    const errorText = error ? errorMessage(error) : null;
    return h('form', { class: 'card create', testid: 'create-form', novalidate: true,
        onsubmit: (e) => {
            e.preventDefault();
            create();
        } },
    /* In a study the set is the condition the server assigns, and nobody is shown it. */
    store.study ? null : h('fieldset', { class: 'sets' },
        h('legend', { text: S.chooseSetLegend }),
        store.sets.map((set) => h('label', { class: 'set-option' },
            h('input', { type: 'radio', name: 'set', value: set.id, testid: 'set-option',
                checked: set.id === store.chosen,
                onchange: () => {
                    store.chosen = set.id;
                } }),
            h('span', { class: 'set-text' },
                h('span', { class: 'set-title', text: set.title }),
                h('span', { class: 'set-meta',
                    text: `${S.setMinutes(set.minutes)} · ${S.setQuestions(set.questions)}` }),
                h('span', { class: 'set-desc', text: set.description }))))),
    errorText ? h('div', { class: 'form-error', role: 'alert', testid: 'start-error' },
        h('p', { text: `${S.createFailed} ${errorText}` })) : null,
    h('div', { class: 'buttons' },
        h('button', { type: 'submit', class: 'button button--big', testid: 'create-button',
            disabled: store.creating, text: store.creating ? S.creating : S.createButton })));
}

function errorMessage(error) {
    if (error.status === 0) {
        return S.errors.network.body;
    }
    if (error.status === 429) {
        return S.errors.rateLimited.body;
    }
    if (error.code === 'no_storage') {
        return S.errors.noStorage.body;
    }
    if (error.code === 'no_crypto') {
        return S.errors.noCrypto.body;
    }
    return S.errors.server.body;
}

function readyView() {
    const { room, link } = store.created;
    return h('section', { class: 'card ready', testid: 'ready' },
        h('h1', { text: S.readyTitle }),
        h('p', { text: S.readyLead }),
        linkBox(link),
        h('div', { class: 'buttons' },
            h('a', { class: 'button button--big', href: `/r/${encodeURIComponent(room)}`,
                testid: 'enter-link', text: S.enterButton })),
        h('p', { class: 'quiet', text: S.readyNote }),
        h('p', { class: 'quiet', text: S.linkPrivacy }));
}

async function loadSets() {
    store.setsError = null;
    store.sets = null;
    render();
    try {
        store.sets = await api.listSets();
        store.chosen = store.sets.some((s) => s.id === PREFERRED_SET)
            ? PREFERRED_SET : store.sets[0]?.id ?? null;
    } catch (error) {
        store.setsError = error.code ?? 'error';
    }
    render();
}

async function create() {
    if (store.creating || !store.chosen) {
        return;
    }
    store.creating = true;
    store.createError = null;
    render();
    try {
        let crypto;
        let link;
        try {
            [crypto, link] = await later;
            await crypto.ready();
        } catch {
            throw Object.assign(new Error('no crypto'), { code: 'no_crypto' });
        }
        try {
            await db.check();
        } catch {
            throw Object.assign(new Error('no storage'), { code: 'no_storage' });
        }
        const secret = crypto.newRoomSecret();
        const { joinVerifier } = crypto.deriveRoomKeys(secret);
        const created = await api.createRoom(store.chosen, crypto.encodeB64(joinVerifier),
            store.study);
        /* The study's key as this browser received it: its fingerprint goes into the link,
         * so the partner's browser refuses any other key the server might show it. */
        let studyFingerprint = null;
        if (created.study) {
            studyFingerprint = crypto.fingerprint(
                crypto.decodeB64(created.study.public_key, crypto.PUBLIC_KEY_BYTES));
        }
        try {
            await db.putRoom({
                v: db.RECORD_VERSION,
                room: created.room,
                role: created.role,
                token: created.token,
                secret,
                keyPair: crypto.newKeyPair(),
                keySent: false,
                confirmSent: false,
                counter: 0,
                outbox: [],
                highest: { A: 0, B: 0 },
                studyFingerprint,
                created: Date.now(),
                /* replaced by the server's expiry on the first visit to the room */
                expires: Date.now() + 30 * 86400 * 1000,
            });
        } catch {
            throw Object.assign(new Error('no storage'), { code: 'no_storage' });
        }
        store.created = {
            room: created.room,
            link: link.roomLink(location.origin, created.room, secret, studyFingerprint),
        };
    } catch (error) {
        store.createError = { status: error.status ?? -1, code: error.code ?? 'error' };
    } finally {
        store.creating = false;
    }
    render();
}

document.title = S.titleStart;
render();
/* Keys do not outlive their rooms: forget expired ones whenever thou is opened; then list
 * the ones still going on. */
db.sweep(Date.now()).then(() => db.allRooms()).then((records) => {
    store.mine = inProgress(records, Date.now());
    render();
}).catch(() => {});
loadSets();
later.then(([crypto]) => crypto.ready()).catch(() => {});
