// Fixtures for the flow view's node tests: a linkedom document standing in for the page,
// a store as room.js keeps it, actions that record their calls, and DOM helpers.
// Importing this module installs the document as globalThis.document.

import { parseHTML } from 'linkedom';

/* linkedom: a small DOM that loads in a fraction of jsdom's time, which matters when a
 * mutation run starts a test file once per mutant. It has no focus, so the page's focus
 * is kept here the way a browser keeps it (with the options of the last focus() call). */
export const dom = parseHTML(
    '<!doctype html><html><head><title></title></head><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.document;
let focused = null;
export const focusLog = [];
Object.defineProperty(document, 'activeElement', {
    get: () => (focused?.isConnected ? focused : document.body),
});
dom.window.HTMLElement.prototype.focus = function focusElement(options) {
    focused = this;
    focusLog.push({ el: this, options });
};

/* A browser refuses to create an element without a valid name; linkedom would make one. */
const createElement = document.createElement.bind(document);
document.createElement = (name, ...rest) => {
    if (typeof name !== 'string' || !/^[a-z][a-z0-9-]*$/i.test(name)) {
        throw new Error(`InvalidCharacterError: createElement(${JSON.stringify(name)})`);
    }
    return createElement(name, ...rest);
};

/** a === b, without asking assert to print two DOM trees (linkedom's are huge). */
export function same(actual, expected, message) {
    if (actual !== expected) {
        throw new Error(`${message}: ${actual?.outerHTML ?? actual} is not `
            + `${expected?.outerHTML ?? expected}`);
    }
}

const { newLog, addEntry } = await import('../../static/js/log.js');

export const SET = {
    stages: [
        { title: 'Common ground', intro: 'Start easy.', questions: [{ id: 'q1' }, { id: 'q2' }] },
        { title: 'Differences', intro: 'Side by side.', questions: [{ id: 'r1' }] },
        { title: 'Last', intro: 'The end.', questions: [{ id: 'q3' }] },
    ],
};

export const QUESTIONS = new Map([
    ['q1', { text: 'What made you smile?', hint: 'Listen for the feeling.', reveal: false }],
    ['q2', { text: 'What do you need?', hint: null, reveal: false }],
    ['r1', { text: 'Where do we differ?', hint: 'Read slowly.', reveal: true }],
]);

export function makeFlow(over = {}) {
    return {
        status: 'active', finished: false, stage: 0, question: 'q1', phase: 'speak',
        speaker: 'A', rounds: 0, done: { A: false, B: false },
        expect: { A: ['answer', 'pass'], B: [] }, progress: { index: 0, total: 3 }, ...over,
    };
}

export function makeStore({ role = 'A', flow = {}, entries = [], local = [], revealed = [],
    ui = {}, lastSeq = 10, lastFlowSeq = 0, drafts = [], sendTrouble = false,
    online = true } = {}) {
    const log = newLog();
    entries.forEach((e) => addEntry(log, e));
    revealed.forEach(([q, seq]) => log.revealed.set(q, seq));
    log.lastFlowSeq = lastFlowSeq;
    return {
        record: { role },
        room: { flow: makeFlow(flow), last_seq: lastSeq },
        set: SET,
        questions: QUESTIONS,
        log,
        local: new Map(local),
        drafts: new Map(drafts),
        ui: { adding: false, confirming: null, busy: false, ...ui },
        sendTrouble,
        online,
    };
}

export function makeActions() {
    const calls = [];
    const record = (name) => (...args) => calls.push([name, ...args]);
    const actions = { calls };
    for (const name of ['compose', 'setDraft', 'confirmHeard', 'startAdding', 'pass', 'resume',
        'pause', 'end', 'askConfirm', 'erase', 'note', 'noteStep', 'vote', 'revealRead',
        'focusNote']) {
        actions[name] = record(name);
    }
    return actions;
}

/** A fresh <main> as the page's only content. */
export function freshMain() {
    const main = document.createElement('main');
    document.body.replaceChildren(main);
    return main;
}

export const byId = (root, id) => root.querySelector(`[data-testid="${id}"]`);
export const allById = (root, id) => [...root.querySelectorAll(`[data-testid="${id}"]`)];
export const part = (main, name) => main.querySelector(`[data-part="${name}"]`);
export const texts = (els) => els.map((e) => e.textContent);
export const click = (el) => el.dispatchEvent(new dom.Event('click', { bubbles: true }));
export const submit = (form) => form.dispatchEvent(new dom.Event('submit',
    { bubbles: true, cancelable: true }));
export { addEntry };
