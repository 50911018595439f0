// "Something new from your partner, over there": a polite indicator for what arrives while
// the reader is elsewhere on the page (writing a note, reading earlier questions). One tap
// takes them there. The screen-reader announcement is made separately and stays.

import { h } from './dom.js';
import { S } from './strings.js';

/** Where each kind of arrival is shown on the page. */
const TARGETS = {
    note: '[data-part=notes-list]',
    pause: '[data-part=action]',
    thread: '[data-part=thread]',
};

function target(kind) {
    if (kind === 'thread') {
        const read = document.querySelector('[data-testid=both-saw]');
        if (read) {
            return read; /* the reflections of a reveal question, shown before the next */
        }
        const entries = document.querySelectorAll(`${TARGETS.thread} [data-testid=entry]`);
        return entries[entries.length - 1] ?? document.querySelector('[data-part=question]');
    }
    return document.querySelector(TARGETS[kind] ?? TARGETS.thread);
}

function inView(el) {
    if (!el) {
        return true; /* nothing to take them to */
    }
    const r = el.getBoundingClientRect();
    return r.bottom > 0 && r.top < window.innerHeight && r.height > 0;
}

/**
 * Show (or clear) the indicator for store.ui.nudge = {kind, type} | null. Cleared when its
 * target comes into view by itself, or when tapped (which scrolls there).
 */
export function renderNudge(el, store) {
    const nudge = store.ui.nudge;
    const clear = () => {
        store.ui.nudge = null;
        el.replaceChildren();
    };
    if (!nudge || inView(target(nudge.kind))) {
        clear();
        return;
    }
    if (el.dataset.key === `${nudge.kind}|${nudge.type}` && el.firstChild) {
        return;
    }
    el.dataset.key = `${nudge.kind}|${nudge.type}`;
    el.replaceChildren(h('button', { type: 'button', class: 'nudge', testid: 'nudge',
        text: S.nudge[nudge.type] ?? S.nudge.other,
        onclick: () => {
            const t = target(nudge.kind);
            clear();
            t?.scrollIntoView({ block: 'center', behavior: 'smooth' });
            if (t) {
                t.setAttribute('tabindex', '-1');
                t.focus({ preventScroll: true });
            }
        } }));
    if (!el.dataset.watching) {
        el.dataset.watching = '1';
        window.addEventListener('scroll', () => {
            if (store.ui.nudge && inView(target(store.ui.nudge.kind))) {
                store.ui.nudge = null;
                el.replaceChildren();
            }
        }, { passive: true });
    }
}
