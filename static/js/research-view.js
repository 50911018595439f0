// The research study panel of the conversation page (docs/research.md): who the study is and
// what it receives, the choice, the closeness scale, withdrawal, and the review before
// release. Draws from a Research (research.js) into its own element above the conversation.

import { h, keyed, uid } from './dom.js';
import { S } from './strings.js';

const SVG = 'http://www.w3.org/2000/svg';
const T = S.research;

/* Steps this person ticked to leave out; kept here so a redraw does not lose them. */
const leaveOut = new Set();

function svg(tag, attrs, ...children) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) {
        el.setAttribute(k, String(v));
    }
    el.append(...children);
    return el;
}

/** Two circles, from apart (1) to almost one (7): the Inclusion of Other in the Self scale. */
function circles(n) {
    const distance = [46, 36, 28, 20, 13, 7, 2][n - 1];
    const r = 20;
    const cx = 50;
    return svg('svg', { viewBox: '0 0 100 48', width: 100, height: 48, 'aria-hidden': 'true',
        focusable: 'false', class: 'ios-circles' },
    svg('circle', { cx: cx - distance / 2, cy: 24, r, fill: 'none', stroke: 'currentColor',
        'stroke-width': 2 }),
    svg('circle', { cx: cx + distance / 2, cy: 24, r, fill: 'none', stroke: 'currentColor',
        'stroke-width': 2, 'stroke-dasharray': '4 2' }));
}

function closenessScale(research, when) {
    const name = uid('ios');
    const legendId = uid('ios-legend');
    let chosen = null;
    const save = h('button', { type: 'submit', class: 'button', testid: `closeness-save-${when}`,
        disabled: true, text: T.closenessSave });
    const options = [1, 2, 3, 4, 5, 6, 7].map((n) => h('label', { class: 'ios-option' },
        h('input', { type: 'radio', name, value: String(n), testid: `closeness-${when}-${n}`,
            'aria-label': T.closenessOption(n),
            onchange: () => {
                chosen = n;
                save.disabled = false;
            } }),
        circles(n),
        h('span', { class: 'ios-number', text: String(n), 'aria-hidden': 'true' })));
    return h('form', { class: 'ios', testid: `closeness-${when}`, novalidate: true,
        onsubmit: (e) => {
            e.preventDefault();
            if (chosen) {
                research.setCloseness(when, chosen);
            }
        } },
    h('fieldset', { 'aria-labelledby': legendId },
        h('legend', { id: legendId,
            text: when === 'before' ? T.closenessBefore : T.closenessAfter }),
        h('p', { class: 'quiet', text: T.closenessHint }),
        h('div', { class: 'ios-options' }, options)),
    h('div', { class: 'buttons' }, save));
}

function about(research) {
    return [
        h('p', { testid: 'study-who', text: T.who(research.study.name) }),
        h('p', { class: 'quiet', text: T.fingerprintLabel }),
        h('p', { class: 'fingerprint', testid: 'study-fingerprint',
            text: research.study.fingerprint ?? '' }),
    ];
}

function consentCard(research) {
    return [
        h('h2', { text: T.title }),
        about(research),
        h('h3', { text: T.collectedTitle }),
        h('ul', {}, T.collected.map((t) => h('li', { text: t }))),
        h('h3', { text: T.notCollectedTitle }),
        h('ul', {}, T.notCollected.map((t) => h('li', { text: t }))),
        h('p', { text: T.how }),
        h('div', { class: 'buttons' },
            h('button', { type: 'button', class: 'button', testid: 'study-consent',
                text: T.consent, onclick: () => research.choose(true) }),
            h('button', { type: 'button', class: 'button button--quiet', testid: 'study-decline',
                text: T.decline, onclick: () => research.choose(false) })),
    ];
}

function withdrawButton(research) {
    return h('div', { class: 'buttons' },
        h('button', { type: 'button', class: 'button button--quiet', testid: 'study-withdraw',
            text: T.withdraw, onclick: () => research.withdraw() }));
}

function review(research) {
    const items = research.reviewItems();
    return [
        h('h2', { text: T.reviewTitle }),
        h('p', { text: T.reviewLead }),
        items.length === 0 ? h('p', { class: 'quiet', text: T.noWords }) : h('ol',
            { class: 'review-list', testid: 'review-list' },
            items.map((item) => {
                const id = uid('leave');
                return h('li', { class: 'review-item', testid: 'review-item',
                    dataset: { step: item.step } },
                h('p', { class: 'quiet', text: T.stepKinds[item.kind] }),
                h('p', { class: 'review-text', text: item.text }),
                h('label', { for: id },
                    h('input', { type: 'checkbox', id, testid: 'leave-out',
                        checked: leaveOut.has(item.step),
                        onchange: (e) => {
                            if (e.target.checked) {
                                leaveOut.add(item.step);
                            } else {
                                leaveOut.delete(item.step);
                            }
                        } }),
                    ` ${T.leaveOut}`));
            })),
        research.releaseError ? h('p', { role: 'alert', text: S.errors.network.body }) : null,
        h('div', { class: 'buttons' },
            h('button', { type: 'button', class: 'button', testid: 'study-release',
                disabled: research.releasing || !research.settled,
                text: research.releasing ? T.releasing : T.release,
                onclick: () => research.release([...leaveOut]) }),
            h('button', { type: 'button', class: 'button button--quiet', testid: 'study-withdraw',
                text: T.withdraw, onclick: () => research.withdraw() })),
    ];
}

/** Which screen of the panel applies, and what it shows. */
function state(research, ready, ended) {
    const mine = research.choice[research.role];
    const theirs = research.choice[research.partner];
    if (research.keyMismatch) {
        return ['mismatch', () => h('p', { role: 'alert', testid: 'study-mismatch',
            text: T.keyMismatch })];
    }
    if (mine === 'withdraw' || theirs === 'withdraw' || research.pending === 'withdraw') {
        return ['withdrawn', () => h('p', { testid: 'study-withdrawn', text: T.withdrawn })];
    }
    if (mine === 'decline' || research.pending === 'decline') {
        return ['declined', () => h('p', { testid: 'study-declined', text: T.declinedMine })];
    }
    if (theirs === 'decline') {
        return ['partner-declined', () => h('p', { testid: 'study-declined',
            text: T.declinedPartner })];
    }
    if (!mine && !research.pending) {
        return ready ? ['ask', () => consentCard(research)] : ['none', () => []];
    }
    if (!research.active) {
        return ['waiting', () => [h('p', { testid: 'study-waiting', text: T.waiting }),
            withdrawButton(research)]];
    }
    const released = research.rec.released;
    if (released) {
        return [`released-${released.released}`, () => h('p', { testid: 'study-released',
            text: T.released(released.released, released.leftOut) })];
    }
    const closeness = research.study.closeness;
    if (closeness && !research.rec.closeness.before) {
        return ['before', () => closenessScale(research, 'before')];
    }
    if (!ended) {
        return ['active', () => [h('p', { testid: 'study-active', text: T.active }),
            withdrawButton(research)]];
    }
    if (closeness && !research.rec.closeness.after) {
        return ['after', () => closenessScale(research, 'after')];
    }
    return [`review-${research.releasing}-${research.settled}-${research.releaseError}-`
        + `${research.reviewItems().length}`, () => review(research)];
}

/**
 * Draw the panel into el (hidden when there is no study). ready: the keys are confirmed, so
 * a choice can be sealed; ended: the conversation is over and review may begin.
 */
export function renderResearch(el, research, { ready, ended }) {
    if (!el) {
        return;
    }
    if (!research) {
        el.hidden = true;
        return;
    }
    el.hidden = false;
    const [key, build] = state(research, ready, ended);
    /* "Before the first question" means before: the conversation waits behind the scale. */
    el.toggleAttribute('data-blocking', key === 'before');
    keyed(el, `${key}|${research.trouble}`, () => h('section', { class: 'card research',
        testid: 'research', 'aria-label': T.title, dataset: { state: key.split('-')[0] } },
    build(),
    research.trouble ? h('p', { class: 'quiet', text: T.failed }) : null));
}
