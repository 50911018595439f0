// Small view pieces shared by the start page and the conversation page.

import { h, uid } from './dom.js';
import { S } from './strings.js';

/** The link to send, with a copy button (clipboard, or selecting the text as a fallback). */
export function linkBox(link) {
    const inputId = uid('link');
    const input = h('input', { id: inputId, class: 'link-input', type: 'text', readonly: true,
        value: link, testid: 'room-link', spellcheck: 'false', autocomplete: 'off' });
    const feedback = h('p', { class: 'copy-feedback', role: 'status', testid: 'copy-feedback' });
    const copy = async () => {
        try {
            if (!navigator.clipboard?.writeText) {
                throw new Error('no clipboard');
            }
            await navigator.clipboard.writeText(link);
            feedback.textContent = S.copied;
        } catch {
            input.focus();
            input.select();
            feedback.textContent = S.copyManual;
        }
    };
    input.addEventListener('focus', () => input.select());
    return h('div', { class: 'link-box' },
        h('label', { for: inputId, text: S.linkLabel }),
        h('div', { class: 'link-row' },
            input,
            h('button', { type: 'button', class: 'button', testid: 'copy-button', text: S.copyButton,
                onclick: copy })),
        feedback);
}

/** "Are you sure?" inline: the question, a confirming and a cancelling button. */
export function confirmPanel({ question, yes, busyText, busy, onYes, onNo, testid }) {
    return h('div', { class: 'confirm-panel', role: 'group', 'aria-label': question, testid },
        h('p', { text: question }),
        h('div', { class: 'buttons' },
            h('button', { type: 'button', class: 'button button--danger', testid: `${testid}-yes`,
                text: busy && busyText ? busyText : yes, disabled: busy, onclick: onYes }),
            h('button', { type: 'button', class: 'button button--secondary',
                testid: `${testid}-no`, text: S.cancel, disabled: busy, onclick: onNo })));
}
