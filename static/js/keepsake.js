// Something to keep, made in this browser from the decrypted conversation: "where we
// differ" (both answers and both reflections of the differences stage, side by side), and
// the whole conversation as a file to save or a page to print. Nothing here reaches the
// server.

import { h } from './dom.js';
import { S } from './strings.js';
import { thread, questionsSeen, notes } from './log.js';

/** The stages about differences: those with a question both answer privately first. */
function differStages(store) {
    return store.set.stages
        .map((stage, i) => (stage.questions.some((q) => q.reveal_together) ? i : -1))
        .filter((i) => i >= 0);
}

/** What one person said on a question: their answers (and additions), their reflections. */
function said(entries, role) {
    const of = (types) => entries.filter((e) => e.role === role && types.includes(e.type)
        && !e.unreadable && e.text);
    const passed = entries.some((e) => e.role === role && e.type === 'pass');
    return { answers: of(['answer', 'add']), reflections: of(['reflect']), passed };
}

function column(part, title, testid) {
    const lines = [];
    for (const e of part.answers) {
        lines.push(h('p', { class: 'differ-answer', text: e.text }));
    }
    if (part.answers.length === 0) {
        lines.push(h('p', { class: 'quiet', text: part.passed ? S.differPassed : S.differNone }));
    }
    for (const e of part.reflections) {
        lines.push(h('p', { class: 'differ-reflection' },
            h('span', { class: 'differ-label', text: `${S.differSaw}: ` }), e.text));
    }
    return h('div', { class: 'differ-col', testid }, h('h4', { text: title }), lines);
}

/** The "where we differ" section of the ended screen (empty when nothing was reached). */
export function differView(store) {
    const me = store.record.role;
    const partner = me === 'A' ? 'B' : 'A';
    const stages = new Set(differStages(store));
    const ids = questionsSeen(store.log)
        .filter((q) => stages.has(store.questions.get(q)?.stage));
    if (ids.length === 0) {
        return [];
    }
    return h('section', { class: 'card differ', testid: 'differ' },
        h('h2', { text: S.differTitle }),
        h('p', { class: 'quiet', text: S.differLead }),
        ids.map((q) => {
            const entries = thread(store.log, q);
            return h('div', { class: 'differ-item', testid: 'differ-item', dataset: { question: q } },
                h('h3', { text: store.questions.get(q)?.text ?? q }),
                h('div', { class: 'differ-grid' },
                    column(said(entries, me), S.differYou, 'differ-mine'),
                    column(said(entries, partner), S.differPartner, 'differ-partner')));
        }));
}

/** The whole conversation as plain text, worded from this person's side. */
export function conversationText(store) {
    const me = store.record.role;
    const who = (e) => (e.role === me ? S.keepYou : S.keepPartner);
    const what = { answer: S.keepAnswered, reflect: S.keepHeard, add: S.keepAdded };
    const lines = [S.keepTitle(store.set.title ?? ''), ''];
    for (const q of questionsSeen(store.log)) {
        lines.push(store.questions.get(q)?.text ?? q);
        for (const e of thread(store.log, q)) {
            if (e.type === 'pass') {
                lines.push(`  ${who(e)}: ${S.keepPassed}`);
            } else if (e.type === 'confirm_heard') {
                lines.push(`  ${who(e)}: ${S.keepConfirmed}`);
            } else if (what[e.type] && e.text && !e.unreadable) {
                lines.push(`  ${who(e)} (${what[e.type]}): ${e.text}`);
            }
        }
        lines.push('');
    }
    const all = notes(store.log).filter((n) => n.text && !n.unreadable);
    if (all.length) {
        lines.push(S.notesLabel);
        for (const n of all) {
            lines.push(`  ${who(n)}: ${n.text}`);
        }
    }
    return `${lines.join('\n')}\n`;
}

/** Save the conversation as a text file, made here; the server never sees it. */
export function saveConversation(store) {
    const blob = new Blob([conversationText(store)], { type: 'text/plain;charset=utf-8' });
    const url = URL.createObjectURL(blob);
    const a = h('a', { href: url, download: S.keepFileName(new Date().toISOString().slice(0, 10)) });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** Save and print, for the ended screen. */
export function keepButtons(store) {
    return h('div', { class: 'buttons keep-buttons' },
        h('button', { type: 'button', class: 'button button--secondary', testid: 'save-button',
            text: S.keepSave, onclick: () => saveConversation(store) }),
        h('button', { type: 'button', class: 'button button--secondary', testid: 'print-button',
            text: S.keepPrint, onclick: () => window.print() }));
}
