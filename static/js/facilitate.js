// The facilitator's page (/facilitate): sign in, the list of one's workshops, a new
// workshop, and the dashboard of one (/facilitate?w=<id>), live over the workshop's
// snapshot stream. Flow metadata only: nothing here can read, or ever receives, an answer.

import * as api from './api.js';
import * as fapi from './facilitator-api.js';
import { h, replace, keyed, focus, announce, uid } from './dom.js';
import { EventStreamReader } from './sse.js';
import { S } from './strings.js';
import { countdownText, tickCountdowns } from './countdown.js';

/** The page's whole mutable state. */
const store = {
    view: 'loading',      /* 'loading' | 'login' | 'list' | 'dashboard' */
    name: null,
    loginError: null,
    loginName: '',        /* kept across a wrong password, so only the password is typed again */
    busy: false,
    workshops: null,
    sets: null,
    listError: null,
    workshopId: null,
    snapshot: null,
    connection: 'connecting',
    dashError: null,      /* a refused action or a lost workshop: a line above the controls */
    picked: [],           /* up to two waiting participants chosen for hand pairing */
    confirmingEnd: false,
    stream: null,
};

/* ---------------------------------------------------------------- frame */

function skeleton(root) {
    if (root.dataset.built) {
        return;
    }
    root.dataset.built = '1';
    replace(root,
        h('a', { class: 'skip-link', href: '#main', text: S.skipToContent }),
        h('header', { class: 'site-header' },
            h('span', { class: 'brand', text: S.appName }),
            h('div', { class: 'status-line', 'data-part': 'who' })),
        h('main', { id: 'main', class: 'page page--wide', tabindex: '-1', testid: 'screen' }));
}

function render() {
    const root = document.getElementById('app');
    skeleton(root);
    keyed(root.querySelector('[data-part=who]'), `${store.name}`, () => (store.name ? [
        h('span', { class: 'quiet', testid: 'signed-in', text: S.fSignedInAs(store.name) }),
        h('button', { type: 'button', class: 'button button--quiet button--small',
            testid: 'logout', text: S.fLogout, onclick: logout }),
    ] : []));
    const main = root.querySelector('main');
    const fresh = main.dataset.view !== store.view;
    main.dataset.screen = store.view;
    if (fresh) {
        main.dataset.view = store.view;
        main.replaceChildren();
        delete main.dataset.key;
        delete main.dataset.built;
    }
    document.title = store.view === 'dashboard' && store.snapshot
        ? `${store.snapshot.workshop.title} · ${S.fTitle}` : S.fTitle;
    switch (store.view) {
    case 'login':
        keyed(main, `login|${store.loginError}|${store.busy}`, loginView);
        break;
    case 'list':
        keyed(main, `list|${JSON.stringify(store.workshops)}|${store.sets?.length}|${store.busy}|${store.listError}`,
            listView);
        break;
    case 'dashboard':
        renderDashboard(main);
        break;
    default:
        keyed(main, 'loading', () => h('p', { class: 'quiet loading', text: S.loading }));
    }
    if (fresh && store.view !== 'loading') {
        focus(main.querySelector('h1'));
    }
}

/* ---------------------------------------------------------------- signing in */

function loginView() {
    const nameId = uid('name');
    const pwId = uid('pw');
    return h('section', { class: 'card login-card' },
        h('h1', { text: S.fLoginTitle }),
        h('p', { class: 'lead', text: S.fLoginLead }),
        store.loginError ? h('p', { class: 'banner banner--unreadable', role: 'alert',
            testid: 'login-error', text: store.loginError }) : null,
        h('form', { class: 'login-form', onsubmit: (e) => { e.preventDefault(); login(e.target); } },
            h('p', { class: 'field' },
                h('label', { for: nameId, text: S.fName }),
                h('input', { id: nameId, name: 'name', autocomplete: 'username', required: true,
                    value: store.loginName, testid: 'login-name' })),
            h('p', { class: 'field' },
                h('label', { for: pwId, text: S.fPassword }),
                h('input', { id: pwId, name: 'password', type: 'password', required: true,
                    autocomplete: 'current-password', testid: 'login-password' })),
            h('div', { class: 'buttons' },
                h('button', { type: 'submit', class: 'button', testid: 'login-submit',
                    disabled: store.busy, text: store.busy ? S.fLoggingIn : S.fLogin }))));
}

async function login(form) {
    store.busy = true;
    store.loginError = null;
    store.loginName = form.elements.name.value;
    render();
    try {
        const answer = await fapi.login(form.elements.name.value, form.elements.password.value);
        signedIn(answer);
    } catch (error) {
        store.busy = false;
        store.loginError = error.code === 'rate_limited' ? S.fRateLimited(error.retryAfter)
            : error.status === 0 ? S.fNetwork : S.fBadLogin;
        render();
        /* The error is announced (role=alert); the cursor goes where the fix is typed. */
        focus(document.querySelector(store.loginName ? '[data-testid=login-password]'
            : '[data-testid=login-name]'));
    }
}

function signedIn({ name, csrf }) {
    store.name = name;
    store.busy = false;
    fapi.setCsrf(csrf);
    route();
}

async function logout() {
    try {
        await fapi.logout();
    } catch {
        /* gone already: signed out either way */
    }
    signedOut(null);
}

function signedOut(message) {
    store.stream?.stop();
    store.name = null;
    store.view = 'login';
    store.loginError = message;
    store.busy = false;
    fapi.setCsrf(null);
    render();
}

/** A request failed: a lost session means signing in again; else say so on the page. */
function trouble(error, fallback = S.fActionFailed) {
    if (error?.status === 401) {
        signedOut(S.fNoSession);
        return;
    }
    const text = { not_your_workshop: S.fNotYours, no_such_workshop: S.fNoSuchWorkshop }[error?.code]
        ?? (error?.status === 0 ? S.fNetwork : fallback);
    store.dashError = text;
    store.listError = text;
    store.busy = false;
    render();
}

/* ---------------------------------------------------------------- routing */

function workshopFromUrl() {
    const w = new URLSearchParams(location.search).get('w');
    return w && /^\d{1,12}$/.test(w) ? w : null;
}

function go(id) {
    history.pushState(null, '', id ? `/facilitate?w=${encodeURIComponent(id)}` : '/facilitate');
    route();
}

function route() {
    store.stream?.stop();
    store.stream = null;
    store.dashError = null;
    store.listError = null;
    const id = workshopFromUrl();
    if (id) {
        openDashboard(id);
    } else {
        openList();
    }
}

/* ---------------------------------------------------------------- the list */

async function openList() {
    store.view = 'list';
    store.workshops = null;
    render();
    try {
        const [workshops, sets] = await Promise.all([fapi.listWorkshops(),
            store.sets ? store.sets : api.listSets()]);
        store.workshops = workshops;
        store.sets = sets;
    } catch (error) {
        trouble(error);
        return;
    }
    render();
}

function listView() {
    const titleId = uid('title');
    const setId = uid('set');
    const capId = uid('cap');
    const helpId = uid('help');
    return [
        h('h1', { text: S.fWorkshops }),
        store.listError ? h('p', { class: 'banner banner--unreadable', role: 'alert',
            text: store.listError }) : null,
        store.workshops === null ? h('p', { class: 'quiet', text: S.loading })
            : store.workshops.length === 0 ? h('p', { class: 'quiet', testid: 'no-workshops',
                text: S.fNoWorkshops })
                : h('ul', { class: 'workshop-list', testid: 'workshop-list' },
                    store.workshops.map((w) => h('li', { class: 'workshop-item' },
                        h('a', { href: `/facilitate?w=${w.id}`, class: 'workshop-link',
                            testid: 'workshop-link',
                            onclick: (e) => { e.preventDefault(); go(String(w.id)); } }, w.title),
                        h('span', { class: `state state--${w.state}`, text: S.fState[w.state] ?? w.state }),
                        h('code', { class: 'quiet', text: w.code })))),
        h('section', { class: 'card new-workshop', 'aria-labelledby': 'new-title' },
            h('h2', { id: 'new-title', text: S.fNew }),
            h('form', { onsubmit: (e) => { e.preventDefault(); create(e.target); } },
                h('p', { class: 'field' },
                    h('label', { for: titleId, text: S.fNewTitle }),
                    h('input', { id: titleId, name: 'title', required: true, maxlength: '120',
                        'aria-describedby': helpId, testid: 'new-title' }),
                    h('span', { id: helpId, class: 'quiet small', text: S.fNewTitleHelp })),
                h('p', { class: 'field' },
                    h('label', { for: setId, text: S.fNewSet }),
                    h('select', { id: setId, name: 'set', testid: 'new-set' },
                        (store.sets ?? []).map((s) => h('option', { value: s.id,
                            selected: s.id === 'workshop-strangers',
                            text: `${s.title} (${S.setMinutes(s.minutes)})` })))),
                h('p', { class: 'field' },
                    h('label', { for: capId, text: S.fNewCapacity }),
                    h('input', { id: capId, name: 'capacity', type: 'number', min: '2',
                        max: '10000', value: '500', inputmode: 'numeric', testid: 'new-capacity' })),
                h('div', { class: 'buttons' },
                    h('button', { type: 'submit', class: 'button', testid: 'create-workshop',
                        disabled: store.busy, text: store.busy ? S.fCreating : S.fCreate })))),
    ];
}

async function create(form) {
    const fields = { title: form.elements.title.value.trim(), set: form.elements.set.value };
    const capacity = Number(form.elements.capacity.value);
    if (Number.isSafeInteger(capacity)) {
        fields.capacity = capacity;
    }
    store.busy = true;
    render();
    let made;
    try {
        made = await fapi.createWorkshop(fields);
    } catch (error) {
        trouble(error);
        return;
    }
    store.busy = false;
    go(String(made.id ?? made.workshop?.id ?? made.workshop));
}

/* ---------------------------------------------------------------- the dashboard */

function openDashboard(id) {
    store.view = 'dashboard';
    store.workshopId = id;
    store.snapshot = null;
    store.picked = [];
    store.confirmingEnd = false;
    store.connection = 'connecting';
    render();
    store.stream = new EventStreamReader({
        idleMs: 65000,
        open: (_lastId, signal) => fapi.openWorkshopStream(id, signal),
        onOpen: () => {
            store.connection = 'open';
            render();
        },
        onDown: () => {
            store.connection = 'down';
            render();
        },
        onFatal: (error) => trouble(error),
        onEvent: ({ event, data }) => {
            if (event !== 'snapshot') {
                return;
            }
            try {
                setSnapshot(JSON.parse(data));
            } catch {
                /* a broken snapshot: the next one replaces it */
            }
        },
    }).start();
}

function setSnapshot(snapshot) {
    if (!snapshot?.workshop) {
        return;
    }
    const waiting = new Set((snapshot.waiting ?? []).map((w) => w.participant));
    store.picked = store.picked.filter((p) => waiting.has(p));
    store.snapshot = snapshot;
    render();
}

async function act(action, more = {}, say = null) {
    if (store.busy) {
        return false; /* one action at a time: a double click does not act twice */
    }
    store.dashError = null;
    store.busy = true;
    render();
    try {
        setSnapshot(await fapi.act(store.workshopId, action, more));
    } catch (error) {
        trouble(error, error?.code === 'not_waiting' ? S.fActionFailed : S.fActionFailed);
        return false;
    }
    store.busy = false;
    if (say) {
        announce(say);
    }
    render();
    return true;
}

/* A control that is rebuilt (a new snapshot, a toggled state) would drop the keyboard
 * focus to the page; it goes back to the same control, or to the one that replaced it. */
const FOCUS_SUCCESSOR = {
    'pause-all': 'resume-all', 'resume-all': 'pause-all', 'end-workshop': 'end-no',
    'end-no': 'end-workshop', 'end-yes': 'end-workshop', 'broadcast-clear': 'broadcast-input',
    'timer-clear': 'timer-minutes',
};

function focusedControl(main) {
    const el = document.activeElement;
    if (!el || !main.contains(el) || !el.dataset.testid) {
        return null;
    }
    return { testid: el.dataset.testid, pair: el.closest('[data-pair]')?.dataset.pair ?? null,
        participant: el.dataset.participant ?? null };
}

function restoreFocus(main, was) {
    if (!was || (document.activeElement && main.contains(document.activeElement))) {
        return;
    }
    const scope = was.pair ? main.querySelector(`[data-pair="${was.pair}"]`) : main;
    const pick = (id) => (was.participant
        ? main.querySelector(`[data-testid="${id}"][data-participant="${was.participant}"]`)
        : scope?.querySelector(`[data-testid="${id}"]`));
    const el = pick(was.testid) ?? pick(FOCUS_SUCCESSOR[was.testid] ?? '');
    el?.focus({ preventScroll: true });
}

function renderDashboard(main) {
    const was = focusedControl(main);
    renderDashboardParts(main);
    restoreFocus(main, was);
}

function renderDashboardParts(main) {
    if (!main.dataset.built) {
        main.dataset.built = '1';
        main.append(
            h('div', { 'data-part': 'head' }),
            h('div', { 'data-part': 'error' }),
            h('div', { class: 'dash-grid' },
                h('div', { class: 'dash-main' },
                    h('section', { class: 'card', 'data-part': 'counts', 'aria-labelledby': 'counts-title' }),
                    h('section', { class: 'card', 'data-part': 'pairs', 'aria-labelledby': 'pairs-title' }),
                    h('section', { class: 'card', 'data-part': 'waiting', 'aria-labelledby': 'waiting-title' })),
                h('div', { class: 'dash-side', 'data-part': 'controls' })));
    }
    if (!main.dataset.ticking) {
        main.dataset.ticking = '1';
        setInterval(() => {
            tickCountdowns(main);
            tickAgo(main);
        }, 1000);
    }
    const part = (name) => main.querySelector(`[data-part=${name}]`);
    const snap = store.snapshot;
    keyed(part('error'), `${store.dashError}`, () => (store.dashError
        ? h('p', { class: 'banner banner--unreadable', role: 'alert', testid: 'dash-error',
            text: store.dashError }) : []));
    if (!snap) {
        keyed(part('head'), 'loading', () => [h('h1', { text: S.loading })]);
        return;
    }
    const w = snap.workshop;
    keyed(part('head'), `${w.title}|${w.code}|${w.state}|${store.connection}`, () => headView(snap));
    keyed(part('counts'), JSON.stringify([snap.counts, snap.pairs.map((p) => p.progress)]),
        () => countsView(snap));
    keyed(part('pairs'), JSON.stringify([snap.pairs, w.set.stages.length, w.state]),
        () => pairsView(snap));
    keyed(part('waiting'), JSON.stringify([snap.waiting, store.picked, w.state]),
        () => waitingView(snap));
    keyed(part('controls'), JSON.stringify([w.state, w.released, w.paused, w.note, w.timer_ends,
        store.confirmingEnd]), () => controlsView(snap));
}

function headView(snap) {
    const w = snap.workshop;
    return h('div', { class: 'dash-head' },
        h('p', {},
            h('a', { href: '/facilitate', class: 'back-link', testid: 'back',
                onclick: (e) => { e.preventDefault(); go(null); }, text: `← ${S.fBack}` })),
        h('h1', { testid: 'dash-title', text: w.title }),
        h('p', { class: 'dash-meta' },
            h('span', { class: 'label', text: `${S.fJoinCode}: ` }),
            h('strong', { class: 'dash-code', testid: 'dash-code', text: w.code }),
            h('span', { class: `state state--${w.state}`, testid: 'dash-state',
                text: S.fState[w.state] ?? w.state }),
            h('span', { class: `live live--${store.connection}`, testid: 'dash-live',
                text: store.connection === 'open' ? S.fLive : S.fReconnecting }),
            h('a', { class: 'button button--secondary button--small', testid: 'projector-link',
                href: `/facilitate/projector?w=${encodeURIComponent(w.id)}`, target: '_blank',
                rel: 'noopener', text: S.fProjector })));
}

function totalQuestions(snap) {
    return snap.workshop.set.stages.reduce((n, s) => n + s.questions, 0);
}

function countsView(snap) {
    const c = snap.counts;
    const total = totalQuestions(snap) * Math.max(1, snap.pairs.length);
    const done = snap.pairs.reduce((n, p) => n + (p.finished ? totalQuestions(snap)
        : Math.min(p.progress?.index ?? 0, totalQuestions(snap))), 0);
    return [
        h('h2', { id: 'counts-title', class: 'visually-hidden', text: S.fRoomProgress }),
        h('dl', { class: 'counts', testid: 'counts' },
            ['joined', 'paired', 'waiting', 'finished'].map((k) => h('div', { class: 'count' },
                h('dt', { text: S.fCounts[k] }),
                h('dd', { testid: `count-${k}`, text: String(c[k] ?? 0) })))),
        h('p', { class: 'room-progress' },
            h('label', { for: 'room-progress', text: S.fRoomProgress }),
            h('progress', { id: 'room-progress', testid: 'room-progress', max: String(total || 1),
                value: String(snap.pairs.length ? done : 0) })),
    ];
}

function pairsView(snap) {
    const stages = snap.workshop.set.stages;
    const ended = snap.workshop.state === 'ended';
    return [
        h('h2', { id: 'pairs-title', text: `${S.fPairs} (${snap.pairs.length})` }),
        snap.pairs.length === 0 ? h('p', { class: 'quiet', testid: 'no-pairs', text: S.fNoPairs })
            : h('ul', { class: 'pairs', testid: 'pairs' }, snap.pairs.map((p) => {
                const total = p.progress?.total ?? totalQuestions(snap);
                const index = p.finished ? total : Math.min(p.progress?.index ?? 0, total);
                return h('li', { class: `pair pair--${p.finished ? 'finished' : p.status}`,
                    testid: 'pair', dataset: { pair: String(p.pair), status: p.status,
                        stage: String(p.stage), index: String(index) } },
                    h('div', { class: 'pair-head' },
                        h('strong', { text: S.fPair(p.pair) }),
                        h('span', { class: 'dots' }, ['A', 'B'].map((r) => h('span', {
                            class: `dot dot--${p.connected?.[r] ? 'on' : 'off'}`,
                            role: 'img', 'aria-label': S.fConnected(r, p.connected?.[r]),
                            title: S.fConnected(r, p.connected?.[r]), text: r })))),
                    h('progress', { max: String(total || 1), value: String(index),
                        'aria-label': S.fQuestion(index, total) }),
                    h('p', { class: 'pair-facts' },
                        h('span', { text: S.fStage(p.stage, stages.length) }),
                        h('span', { text: S.fQuestion(Math.min(index + (p.finished ? 0 : 1), total), total) }),
                        h('span', { text: p.turn ? S.fTurn[p.turn] : S.fTurn.none }),
                        h('span', { class: 'pair-status', testid: 'pair-status',
                            text: p.finished ? S.fStatus.finished : S.fStatus[p.status] ?? p.status }),
                        h('span', { class: 'quiet', dataset: { since: String(p.last_step ?? '') },
                            text: agoText(p.last_step) })),
                    p.finished || ended ? null : h('button', { type: 'button',
                        class: 'button button--small button--secondary', testid: 'move-on',
                        'aria-label': S.fMoveOnLabel(p.pair), text: S.fMoveOn,
                        onclick: () => act('move_on', { pair: p.pair }) }));
            })),
    ];
}

function agoText(ms) {
    if (!Number.isSafeInteger(ms)) {
        return '';
    }
    return S.fLastStep(Math.max(0, Math.floor((Date.now() - ms) / 1000)));
}

function tickAgo(root) {
    for (const el of root.querySelectorAll('[data-since]')) {
        const text = agoText(Number(el.dataset.since) || null);
        if (el.textContent !== text) {
            el.textContent = text;
        }
    }
}

function waitingView(snap) {
    const ended = snap.workshop.state === 'ended';
    const list = snap.waiting ?? [];
    return [
        h('h2', { id: 'waiting-title', text: `${S.fWaiting} (${list.length})` }),
        list.length === 0 ? h('p', { class: 'quiet', testid: 'no-waiting', text: S.fNoWaiting })
            : h('ul', { class: 'waiting-list', testid: 'waiting-list' }, list.map((p) => {
                const id = uid('pick');
                const secs = Math.max(0, Math.floor((Date.now() - p.since) / 1000));
                return h('li', { class: 'waiting-person' },
                    h('input', { type: 'checkbox', id, testid: 'pick', disabled: ended,
                        dataset: { participant: p.participant },
                        checked: store.picked.includes(p.participant),
                        onchange: (e) => pick(p.participant, e.target.checked) }),
                    h('label', { for: id, text: S.fWaitingSince(p.participant, secs) }),
                    p.left_behind ? h('span', { class: 'tag', text: S.fLeftBehind }) : null,
                    p.present === false ? h('span', { class: 'tag tag--away', text: S.fAway }) : null);
            })),
        list.length >= 2 && !ended ? h('div', { class: 'buttons' },
            h('button', { type: 'button', class: 'button button--secondary', testid: 'pair-these',
                disabled: store.picked.length !== 2, text: S.fPairThese,
                onclick: () => act('pair', { a: store.picked[0], b: store.picked[1] }) })) : null,
    ];
}

function pick(participant, on) {
    store.picked = store.picked.filter((p) => p !== participant);
    if (on) {
        store.picked.push(participant);
        if (store.picked.length > 2) {
            store.picked.shift();
        }
    }
    render();
}

function controlsView(snap) {
    const w = snap.workshop;
    const stages = w.set.stages;
    if (w.state === 'ended') {
        return h('section', { class: 'card controls-card', testid: 'controls' },
            h('h2', { text: S.fEnded }));
    }
    const next = w.released + 1;
    const noteId = uid('note');
    const noteHelp = uid('note-help');
    const minId = uid('min');
    return h('section', { class: 'card controls-card', testid: 'controls',
        'aria-label': S.fTitle },
        h('h2', { class: 'visually-hidden', text: S.fTitle }),
        h('div', { class: 'control-group' },
            h('p', { testid: 'released', text: S.fReleased(w.released, stages.length) }),
            next < stages.length
                ? h('button', { type: 'button', class: 'button', testid: 'release-next',
                    text: S.fReleaseNext(stages[next].title),
                    onclick: () => act('release', { stage: next },
                        S.fAnnounceReleased(stages[next].title)) })
                : h('p', { class: 'quiet', text: S.fAllReleased })),
        h('div', { class: 'control-group' },
            w.paused ? h('p', { class: 'paused-all', testid: 'paused-all', text: S.fPausedAll }) : null,
            h('button', { type: 'button', class: w.paused ? 'button' : 'button button--secondary',
                testid: w.paused ? 'resume-all' : 'pause-all',
                text: w.paused ? S.fResumeAll : S.fPauseAll,
                onclick: () => act(w.paused ? 'resume_all' : 'pause_all', {},
                    w.paused ? S.fAnnounceResumed : S.fPausedAll) })),
        h('form', { class: 'control-group', onsubmit: (e) => {
            e.preventDefault();
            const text = e.target.elements.note.value.trim();
            act('broadcast', { text }, text ? S.fAnnounceNote : S.fAnnounceNoteCleared);
        } },
            h('label', { for: noteId, class: 'label', text: S.fBroadcast }),
            w.note ? h('p', { class: 'current-note' },
                h('span', { class: 'quiet', text: `${S.fCurrentNote}: ` }),
                h('span', { testid: 'current-note', text: w.note })) : null,
            h('textarea', { id: noteId, name: 'note', rows: '2', maxlength: '280',
                'aria-describedby': noteHelp, testid: 'broadcast-input' }),
            h('span', { id: noteHelp, class: 'quiet small', text: S.fBroadcastHelp }),
            h('div', { class: 'buttons' },
                h('button', { type: 'submit', class: 'button button--secondary', testid: 'broadcast-send',
                    text: S.fSend }),
                w.note ? h('button', { type: 'button', class: 'button button--quiet',
                    testid: 'broadcast-clear', text: S.fClear,
                    onclick: () => act('broadcast', { text: '' }) }) : null)),
        h('form', { class: 'control-group', onsubmit: (e) => {
            e.preventDefault();
            const minutes = Number(e.target.elements.minutes.value);
            if (minutes > 0) {
                act('timer', { seconds: Math.round(minutes * 60) }, S.fAnnounceTimer(minutes));
            }
        } },
            h('label', { for: minId, class: 'label', text: `${S.fTimer} (${S.fTimerMinutes})` }),
            w.timer_ends && w.timer_ends > Date.now() ? h('p', { class: 'timer-now' },
                h('span', { class: 'quiet', text: `${S.fTimerLeft}: ` }),
                h('strong', { testid: 'timer-left', dataset: { countdown: String(w.timer_ends) },
                    text: countdownText(w.timer_ends) })) : null,
            h('div', { class: 'inline-field' },
                h('input', { id: minId, name: 'minutes', type: 'number', min: '0.5', max: '1440',
                    step: '0.5', value: '5', inputmode: 'decimal', testid: 'timer-minutes' }),
                h('button', { type: 'submit', class: 'button button--secondary', testid: 'timer-start',
                    text: S.fTimerStart }),
                w.timer_ends ? h('button', { type: 'button', class: 'button button--quiet',
                    testid: 'timer-clear', text: S.fTimerClear,
                    onclick: () => act('timer', { seconds: 0 }) }) : null)),
        h('div', { class: 'control-group' },
            h('p', { class: 'label', text: S.fJoining }),
            h('button', { type: 'button', class: 'button button--secondary', testid: 'toggle-joining',
                text: w.state === 'open' ? S.fCloseJoining : S.fOpenJoining,
                onclick: () => act(w.state === 'open' ? 'close' : 'open') })),
        h('div', { class: 'control-group control-group--end' },
            store.confirmingEnd
                ? h('div', { class: 'confirm', role: 'group', 'aria-label': S.fEnd },
                    h('p', { text: S.fEndQ }),
                    h('div', { class: 'buttons' },
                        h('button', { type: 'button', class: 'button button--danger',
                            testid: 'end-yes', text: S.fEndYes, onclick: async () => {
                                store.confirmingEnd = false;
                                await act('end');
                            } }),
                        h('button', { type: 'button', class: 'button button--secondary',
                            testid: 'end-no', text: S.fEndNo, onclick: () => {
                                store.confirmingEnd = false;
                                render();
                            } })))
                : h('button', { type: 'button', class: 'button button--quiet', testid: 'end-workshop',
                    text: S.fEnd, onclick: () => {
                        store.confirmingEnd = true;
                        render();
                        focus(document.querySelector('[data-testid=end-no]'));
                    } })));
}

/* ---------------------------------------------------------------- start */

async function main() {
    window.addEventListener('popstate', () => {
        if (store.name) {
            route();
        }
    });
    render();
    try {
        signedIn(await fapi.currentSession());
    } catch (error) {
        signedOut(error?.status === 401 || error?.status === 404 ? null : S.fNetwork);
    }
}

main();
