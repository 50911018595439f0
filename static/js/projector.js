// The projector view (/facilitate/projector?w=<id>): the join code in very large type, the
// link, its QR code (made by the server, qr.svg) and live counts, for a room to read from
// the back. Signed-in facilitators only (the same cookie as the dashboard).

import * as fapi from './facilitator-api.js';
import { h, replace, keyed } from './dom.js';
import { EventStreamReader } from './sse.js';
import { S } from './strings.js';
import { countdownText, tickCountdowns } from './countdown.js';

const store = { id: null, snapshot: null, error: null, connection: 'connecting' };

/** The link people type, without "https://": the server's public address when it has one
 *  (join_url, the same one its QR code holds), else this page's own origin. */
function shownLink(w) {
    return w.join_url ? w.join_url.replace(/^https?:\/\//, '') : `${location.host}${w.link}`;
}

function render() {
    const root = document.getElementById('app');
    const snap = store.snapshot;
    if (store.error || !snap) {
        keyed(root, `error|${store.error}`, () => h('main', { class: 'projector', id: 'main',
            dataset: { screen: store.error ? 'error' : 'loading' } },
            h('h1', { class: 'projector-title', text: store.error ?? S.loading })));
        return;
    }
    const w = snap.workshop;
    document.title = `${w.title} · ${S.pTitle}`;
    if (!root.querySelector('.projector[data-ready]')) {
        delete root.dataset.key;
        replace(root, h('main', { class: 'projector', id: 'main',
            dataset: { ready: '1', screen: 'projector' } },
            h('h1', { class: 'projector-title', 'data-part': 'title' }),
            h('div', { class: 'projector-join' },
                h('div', { class: 'projector-text' },
                    h('p', { class: 'projector-label', text: S.pJoinAt }),
                    h('p', { class: 'projector-link', 'data-part': 'link' }),
                    h('p', { class: 'projector-label', text: S.pCode }),
                    h('p', { class: 'projector-code', testid: 'projector-code', 'data-part': 'code' })),
                h('figure', { class: 'projector-qr' },
                    h('img', { src: fapi.qrUrl(w.id), testid: 'projector-qr',
                        alt: S.pQrAlt(shownLink(w)), width: '360', height: '360' }),
                    h('figcaption', { class: 'projector-label', text: S.pScan }))),
            h('div', { 'data-part': 'study' }),
            h('div', { 'data-part': 'note' }),
            h('dl', { class: 'projector-counts', 'data-part': 'counts', testid: 'projector-counts',
                'aria-live': 'polite' })));
        setInterval(() => tickCountdowns(root), 1000);
    }
    const part = (name) => root.querySelector(`[data-part=${name}]`);
    keyed(part('title'), w.title, () => [w.title]);
    keyed(part('link'), shownLink(w), () => [shownLink(w)]);
    keyed(part('code'), w.code, () => [w.code]);
    /* No link fragment in a workshop: the room reads the study key's fingerprint from here. */
    keyed(part('study'), `${w.study?.name}|${w.study?.fingerprint}`, () => (w.study ? [
        h('p', { class: 'projector-label', text: S.pStudy(w.study.name) }),
        h('p', { class: 'projector-fingerprint', testid: 'projector-study-fingerprint',
            text: w.study.fingerprint }),
        h('p', { class: 'projector-label', text: S.pStudyHelp }),
    ] : []));
    keyed(part('note'), `${w.note}|${w.timer_ends}|${w.state}`, () => [
        w.state === 'closed' || w.state === 'ended' ? h('p', { class: 'projector-note',
            text: S.fState[w.state] }) : null,
        w.note ? h('p', { class: 'projector-note', testid: 'projector-note', text: w.note }) : null,
        w.timer_ends && w.timer_ends > Date.now() ? h('p', { class: 'projector-timer',
            dataset: { countdown: String(w.timer_ends) }, text: countdownText(w.timer_ends) }) : null,
    ]);
    keyed(part('counts'), JSON.stringify(snap.counts), () => ['joined', 'paired', 'waiting',
        'finished'].map((k) => h('div', { class: 'projector-count' },
        h('dt', { text: S.fCounts[k] }),
        h('dd', { testid: `projector-${k}`, text: String(snap.counts[k] ?? 0) }))));
}

function main() {
    const id = new URLSearchParams(location.search).get('w');
    if (!id || !/^\d{1,12}$/.test(id)) {
        store.error = S.fNoSuchWorkshop;
        render();
        return;
    }
    store.id = id;
    render();
    new EventStreamReader({
        idleMs: 65000,
        open: (_lastId, signal) => fapi.openWorkshopStream(id, signal),
        onOpen: () => {
            store.connection = 'open';
        },
        onDown: () => {
            store.connection = 'down';
        },
        onFatal: (error) => {
            store.error = error?.status === 401 ? S.fNoSession
                : error?.code === 'not_your_workshop' ? S.fNotYours : S.fNoSuchWorkshop;
            render();
        },
        onEvent: ({ event, data }) => {
            if (event !== 'snapshot') {
                return;
            }
            try {
                const snap = JSON.parse(data);
                if (snap?.workshop) {
                    store.snapshot = snap;
                    store.error = null;
                    render();
                }
            } catch {
                /* the next snapshot replaces it */
            }
        },
    }).start();
}

main();
