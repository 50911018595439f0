// The conversation page's frame (header, banners) and its simple screens: loading, error,
// waiting for the partner, setting up privacy, tampering, erased. The conversation itself
// is drawn by flow-view.js. Reads the store, never changes it: user input goes to actions.

import { h, replace, keyed, focus } from './dom.js';
import { S } from './strings.js';
import { roomLink } from './link.js';
import { linkBox, confirmPanel } from './widgets.js';
import { renderTalk, renderEnded } from './flow-view.js';
import { counterGaps } from './log.js';
import { renderNudge } from './nudge.js';
import { renderMove } from './move-view.js';
import {
    workshopScreenOf, safetyCodeScreen, codeMismatchScreen, facilitatorBar, facilitatorBarKey,
    partnerGonePanel, tickCountdowns,
} from './workshop-view.js';

/** Which screen the store calls for. */
export function screenOf(store) {
    if (store.tamper) {
        return 'tampered';
    }
    if (store.erased) {
        return 'erased';
    }
    if (store.fatal) {
        return 'error';
    }
    if (!store.room || !store.record) {
        return 'loading';
    }
    if (store.room.state === 'ended') {
        return 'ended';
    }
    if (!store.partnerJoined && !store.workshop) {
        return 'waiting'; /* a workshop room has both seats from the start */
    }
    /* A workshop room: the partners compare the safety code before anything is sent. */
    const workshopScreen = workshopScreenOf(store);
    if (workshopScreen) {
        return workshopScreen;
    }
    if (!store.confirmed) {
        return 'keying';
    }
    /* The one who joins is welcomed too: how it works and what is private, once, before
     * the first question (A read it on the start page). */
    if (store.record.role === 'B' && !store.record.welcomed && !store.workshop) {
        return 'welcome';
    }
    return 'talk';
}

/** Build the page skeleton once: skip link, header, banners, main. */
function skeleton(root) {
    if (root.dataset.built) {
        return;
    }
    root.dataset.built = '1';
    replace(root,
        h('a', { class: 'skip-link', href: '#main', text: S.skipToContent }),
        h('header', { class: 'site-header' },
            h('a', { class: 'brand', href: '/', text: S.appName }),
            h('div', { class: 'status-line', 'data-part': 'status' })),
        h('div', { class: 'banners', 'data-part': 'banners', role: 'status' }),
        h('div', { class: 'workshop-part', 'data-part': 'workshop' }),
        h('main', { id: 'main', class: 'page', tabindex: '-1', testid: 'screen' }),
        h('div', { class: 'nudge-bar', 'data-part': 'nudge' }));
}

export function renderRoom(root, store, actions) {
    skeleton(root);
    const screen = screenOf(store);
    const main = root.querySelector('main');
    main.dataset.screen = screen;
    renderStatus(root.querySelector('[data-part=status]'), store, screen);
    renderBanners(root.querySelector('[data-part=banners]'), store, screen);
    renderWorkshopPart(root.querySelector('[data-part=workshop]'), store, screen, actions);

    const screenKey = screen === 'error' ? `error:${store.fatal.kind}` : screen;
    const fresh = main.dataset.screenKey !== screenKey;
    main.dataset.screenKey = screenKey;
    if (fresh) {
        main.replaceChildren();
        delete main.dataset.key;
    }
    document.title = { ended: S.titleEnded }[screen] ?? S.titleRoom;
    switch (screen) {
    case 'loading':
        keyed(main, 'loading', () => h('p', { class: 'quiet loading', text: S.loading }));
        break;
    case 'error':
        keyed(main, screenKey, () => errorScreen(store, actions));
        break;
    case 'tampered':
        keyed(main, `tampered:${store.tamper}`, () => tamperScreen(store));
        break;
    case 'erased':
        keyed(main, 'erased', () => noticeScreen(S.erasedTitle, S.erasedBody, 'erased'));
        break;
    case 'waiting':
        keyed(main, `waiting:${store.ui.confirming}:${store.ui.busy}`,
            () => waitingScreen(store, actions));
        /* A may move too before B comes: the link carries the room secret along. */
        renderMove(main.querySelector('[data-part=move]'), store, actions);
        break;
    case 'keying':
        keyed(main, `keying:${store.partnerPresent}`, () => keyingScreen(store));
        break;
    case 'welcome':
        keyed(main, `welcome:${store.safetyCode}`, () => welcomeScreen(store, actions));
        break;
    case 'safetyCode':
        keyed(main, `safetyCode:${store.safetyCode}`, () => safetyCodeScreen(store, actions));
        break;
    case 'codeMismatch':
        keyed(main, 'codeMismatch', () => codeMismatchScreen(store));
        break;
    case 'talk':
        renderTalk(main, store, actions);
        break;
    case 'ended':
        renderEnded(main, store, actions);
        break;
    default:
        break;
    }
    if (screen === 'talk') {
        renderNudge(root.querySelector('[data-part=nudge]'), store);
    } else {
        store.ui.nudge = null;
        root.querySelector('[data-part=nudge]').replaceChildren();
    }
    if (fresh && screen !== 'loading') {
        const heading = main.querySelector('h1');
        if (heading && (document.activeElement === document.body
            || !document.activeElement || !main.contains(document.activeElement))) {
            focus(heading);
        }
    }
}

/** Workshops: the facilitator's note and countdown, and "your partner has gone". */
function renderWorkshopPart(el, store, screen, actions) {
    if (!store.workshop) {
        return;
    }
    if (!el.dataset.ticking) {
        el.dataset.ticking = '1';
        setInterval(() => tickCountdowns(el), 1000);
    }
    const gone = store.partnerGone && !store.partnerPresent && screen === 'talk';
    keyed(el, `${facilitatorBarKey(store)}|${gone}|${store.ui.busy}`, () => [
        facilitatorBar(store),
        gone ? partnerGonePanel(store, actions) : null,
    ]);
}

function renderStatus(el, store, screen) {
    /* presence is only known while the stream is up */
    const showPartner = ['waiting', 'keying', 'safetyCode', 'talk'].includes(screen)
        && store.connection === 'open' && store.online;
    /* In a workshop "private" also needs this person's word that the codes are the same. */
    const privateNow = store.confirmed && (!store.workshop || store.record?.codeConfirmed === true);
    const key = [screen, privateNow, store.safetyCode, store.partnerJoined,
        store.partnerPresent, showPartner].join('|');
    keyed(el, key, () => {
        const parts = [];
        if (privateNow && screen !== 'tampered' && screen !== 'codeMismatch') {
            parts.push(h('details', { class: 'privacy' },
                h('summary', { testid: 'privacy-status' },
                    h('span', { class: 'lock', 'aria-hidden': 'true' }), S.privacyDone),
                h('div', { class: 'privacy-body' },
                    h('p', { text: S.privacyDoneLong }),
                    h('p', {},
                        h('span', { class: 'label', text: `${S.safetyCodeLabel}: ` }),
                        h('code', { class: 'safety-code', testid: 'safety-code',
                            text: store.safetyCode ?? '' })),
                    h('p', { class: 'quiet', text: S.safetyCodeHelp }))));
        } else if (screen === 'keying' || screen === 'safetyCode') {
            parts.push(h('span', { class: 'privacy privacy--pending', testid: 'privacy-status',
                text: S.privacyPending }));
        }
        if (showPartner) {
            let text = S.partnerNotJoined;
            let cls = 'presence presence--none';
            if (store.partnerJoined) {
                text = store.partnerPresent ? S.partnerHere : S.partnerAway;
                cls = store.partnerPresent ? 'presence presence--here' : 'presence presence--away';
            }
            parts.push(h('span', { class: cls, testid: 'partner-presence', text }));
        }
        return parts;
    });
}

function renderBanners(el, store, screen) {
    const lines = [];
    if (['waiting', 'keying', 'talk', 'ended'].includes(screen)) {
        if (!store.online) {
            lines.push(['offline', S.offline]);
        } else if (store.connection === 'down') {
            lines.push(['reconnecting', S.reconnecting]);
        }
        if (store.unreadable > 0) {
            lines.push(['unreadable', S.unreadableBanner]);
        }
        if (store.rolledBack) {
            lines.push(['rollback', S.rollbackBanner]);
        }
        /* A partner's privately written answer is missing until the reveal, by design. */
        const partner = store.record.role === 'A' ? 'B' : 'A';
        const gaps = store.room?.flow?.phase === 'reveal_write' ? 0
            : counterGaps(store.log, partner);
        if (gaps > 0) {
            lines.push(['gaps', S.gapsBanner(gaps)]);
        }
    }
    keyed(el, lines.map((l) => l[0]).join('|'), () => lines.map(([kind, text]) =>
        h('p', { class: `banner banner--${kind}`, testid: `banner-${kind}`, text })));
}

function errorScreen(store, actions) {
    const kind = store.fatal.kind;
    const text = S.errors[kind] ?? S.errors.unexpected;
    return h('section', { class: 'card card--notice', testid: 'error' },
        h('h1', { testid: 'error-title', text: text.title }),
        h('p', { testid: 'error-message', text: text.body }),
        h('div', { class: 'buttons' },
            store.fatal.retry ? h('button', { type: 'button', class: 'button',
                testid: 'retry-button', text: S.retry, onclick: () => actions.retry() }) : null,
            h('a', { class: store.fatal.retry ? 'button button--secondary' : 'button', href: '/',
                testid: 'start-link', text: ['goneRoom', 'roomFull', 'oldVersion'].includes(kind)
                    ? S.startNew : S.startOver })));
}

function tamperScreen(store) {
    const body = { partnerKey: S.tamperBody, partnerKeyChanged: S.tamperKeyChangedBody,
        ownKey: S.tamperOwnBody, confirm: S.tamperConfirmBody, setChanged: S.tamperSetBody,
        forged: S.tamperForgedBody, replayed: S.tamperReplayedBody,
        commitment: S.wsTamperCommitBody, order: S.wsTamperCommitBody }[store.tamper]
        ?? S.tamperBody;
    return h('section', { class: 'card card--danger', role: 'alert', testid: 'tamper-warning',
        dataset: { reason: store.tamper } },
        h('h1', { text: S.tamperTitle }),
        h('p', { text: body }),
        h('p', { text: S.tamperAdvice }),
        h('div', { class: 'buttons' },
            h('a', { class: 'button', href: '/', text: S.startNew })));
}

function noticeScreen(title, body, testid) {
    return h('section', { class: 'card card--notice', testid },
        h('h1', { text: title }),
        h('p', { text: body }),
        h('div', { class: 'buttons' },
            h('a', { class: 'button', href: '/', text: S.startNew })));
}

function waitingScreen(store, actions) {
    const link = roomLink(location.origin, store.roomId, store.record.secret,
        store.record.studyFingerprint);
    return [h('section', { class: 'card' },
        h('h1', { text: S.waitingTitle }),
        h('p', { text: S.waitingLead }),
        linkBox(link),
        h('p', { class: 'quiet', text: S.linkPrivacy }),
        h('p', { class: 'waiting-pulse', 'aria-hidden': 'true' }),
        h('div', { class: 'controls' },
            store.ui.confirming === 'erase'
                ? confirmPanel({ question: S.cancelWaitingQ, yes: S.cancelWaitingYes,
                    busyText: S.erasing, busy: store.ui.busy, onYes: () => actions.erase(),
                    onNo: () => actions.askConfirm(null), testid: 'erase-confirm' })
                : h('button', { type: 'button', class: 'button button--quiet',
                    testid: 'erase-button', text: S.cancelWaiting,
                    onclick: () => actions.askConfirm('erase') }))),
    h('section', { class: 'move', 'data-part': 'move', testid: 'move-section' })];
}

function welcomeScreen(store, actions) {
    return h('section', { class: 'card welcome', testid: 'welcome' },
        h('h1', { text: S.welcomeTitle }),
        h('p', { text: S.welcomeLead }),
        h('h2', { text: S.howTitle }),
        h('ol', { class: 'how-steps' }, S.howSteps.map((t) => h('li', { text: t }))),
        h('h2', { text: S.welcomePrivateTitle }),
        h('p', { text: S.privacyDoneLong }),
        h('p', {},
            h('span', { class: 'label', text: `${S.safetyCodeLabel}: ` }),
            h('code', { class: 'safety-code', testid: 'welcome-safety-code',
                text: store.safetyCode ?? '' })),
        h('p', { class: 'quiet', testid: 'safety-code-help', text: S.safetyCodeHelp }),
        h('div', { class: 'buttons' },
            h('button', { type: 'button', class: 'button', testid: 'welcome-begin',
                text: S.welcomeBegin, onclick: () => actions.welcomed() })));
}

function keyingScreen(store) {
    return h('section', { class: 'card' },
        h('h1', { text: S.keyingTitle }),
        h('p', { text: S.keyingLead }),
        h('p', { class: 'waiting-pulse', 'aria-hidden': 'true' }),
        store.partnerPresent ? null : h('p', { class: 'quiet', text: S.keyingAway }));
}
