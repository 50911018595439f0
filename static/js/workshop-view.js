// The conversation page's workshop parts: the safety-code step (docs/crypto.md §5a), the
// warning when the codes differ, the facilitator's note and countdown, and the panel for
// someone whose partner has gone. Reads the store, never changes it.

import { h } from './dom.js';
import { S } from './strings.js';
import { groupCode } from './safety.js';
import { countdownText } from './countdown.js';

export { tickCountdowns } from './countdown.js';

/** Which workshop screen comes before the conversation, or null when none does. */
export function workshopScreenOf(store) {
    if (!store.workshop) {
        return null;
    }
    if (store.record.codeConfirmed === false) {
        return 'codeMismatch';
    }
    if (store.record.codeConfirmed !== true) {
        return store.safetyCode ? 'safetyCode' : 'keying';
    }
    return null;
}

/** "Read your code to your partner. Same code? Yes / No". */
export function safetyCodeScreen(store, actions) {
    return h('section', { class: 'card safety-step', testid: 'safety-step' },
        h('h1', { text: S.wsCodeTitle }),
        h('p', { text: S.wsCodeLead }),
        h('p', { class: 'sas', testid: 'sas-code', 'aria-label': S.wsCodeAria(store.safetyCode) },
            groupCode(store.safetyCode)),
        h('p', { text: S.wsCodeAsk }),
        h('div', { class: 'buttons' },
            h('button', { type: 'button', class: 'button', testid: 'sas-yes', text: S.wsCodeYes,
                onclick: () => actions.sameCode(true) }),
            h('button', { type: 'button', class: 'button button--secondary', testid: 'sas-no',
                text: S.wsCodeNo, onclick: () => actions.sameCode(false) })),
        h('p', { class: 'quiet', text: S.wsCodeWhy }));
}

/** The codes differ: someone may be in between. Nothing has been or will be sent. */
export function codeMismatchScreen(store) {
    return h('section', { class: 'card card--danger', role: 'alert', testid: 'sas-mismatch' },
        h('h1', { text: S.wsMismatchTitle }),
        h('p', { text: S.wsMismatchBody }),
        h('p', { text: S.wsMismatchAdvice }),
        h('p', { class: 'quiet' },
            h('span', { class: 'label', text: `${S.wsYourCode}: ` }),
            h('code', { class: 'safety-code', text: groupCode(store.safetyCode) })));
}

/** The facilitator's note and countdown, above the conversation; null when neither. */
export function facilitatorBar(store) {
    const f = store.facilitator;
    if (!f || f.ended || (!f.note && !liveTimer(f))) {
        return null;
    }
    return h('aside', { class: 'facilitator-bar', testid: 'facilitator-bar',
        'aria-label': S.wsFromFacilitator },
        f.note ? h('p', { class: 'facilitator-note' },
            h('span', { class: 'label', text: `${S.wsFromFacilitator}: ` }),
            h('span', { testid: 'facilitator-note', text: f.note })) : null,
        liveTimer(f) ? h('p', { class: 'facilitator-timer' },
            h('span', { class: 'label', text: `${S.wsTimeLeft}: ` }),
            h('span', { testid: 'facilitator-timer', dataset: { countdown: String(f.timerEnds) },
                text: countdownText(f.timerEnds) })) : null);
}

export function facilitatorBarKey(store) {
    const f = store.facilitator;
    return f ? `${f.note ?? ''}|${liveTimer(f) ? f.timerEnds : ''}|${f.ended}` : '';
}

function liveTimer(f) {
    return f.timerEnds !== null && f.timerEnds > Date.now();
}

/** The partner has been gone a while: a new partner, or finish on one's own. */
export function partnerGonePanel(store, actions) {
    return h('section', { class: 'card card--notice partner-gone', testid: 'partner-gone' },
        h('h2', { text: S.wsPartnerGoneTitle }),
        h('p', { text: S.wsPartnerGoneBody }),
        h('div', { class: 'buttons' },
            h('button', { type: 'button', class: 'button', testid: 'find-new-partner',
                disabled: store.ui.busy, text: store.ui.busy ? S.wsFinding : S.wsFindNew,
                onclick: () => actions.findNewPartner() }),
            h('button', { type: 'button', class: 'button button--secondary',
                testid: 'finish-alone', text: S.wsFinishAlone,
                onclick: () => actions.finishAlone() })));
}
