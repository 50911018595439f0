// The "continue on another device" section of the conversation page (docs/client.md):
// folded to one button until asked, then the one-time link, its QR code and a warning that
// it is as private as the conversation. Reads the store (store.ui.move), never changes it.

import { h, keyed, uid } from './dom.js';
import { S } from './strings.js';

const SVG = 'http://www.w3.org/2000/svg';
const QUIET = 4; /* modules of white around the code, as the QR standard asks */

function svg(tag, attrs) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) {
        el.setAttribute(k, String(v));
    }
    return el;
}

/**
 * The QR code of text as an SVG element (attributes only: no inline style, so the CSP
 * holds), or null when it cannot be made. `qrcode` is the vendored generator's factory.
 */
export function qrSvg(qrcode, text) {
    let qr;
    try {
        qr = qrcode(0, 'L'); /* the smallest version that holds the link */
        qr.addData(text, 'Byte');
        qr.make();
    } catch {
        return null;
    }
    const n = qr.getModuleCount();
    let d = '';
    for (let r = 0; r < n; r++) {
        for (let c = 0; c < n; c++) {
            if (qr.isDark(r, c)) {
                d += `M${c + QUIET} ${r + QUIET}h1v1h-1z`;
            }
        }
    }
    const size = n + 2 * QUIET;
    const root = svg('svg', { viewBox: `0 0 ${size} ${size}`, role: 'img',
        'aria-label': S.move.qrLabel, class: 'move-qr', 'data-testid': 'move-qr',
        'data-modules': n, 'shape-rendering': 'crispEdges' });
    root.append(svg('rect', { width: size, height: size, fill: '#ffffff' }),
        svg('path', { d, fill: '#000000' }));
    return root;
}

export function renderMove(el, store, actions) {
    const move = store.ui.move ?? null;
    keyed(el, move ? `move|${move.id}` : 'move', () => {
        const head = [
            h('h2', { class: 'move-title', text: S.move.title }),
            h('p', { class: 'small', text: S.move.explain }),
        ];
        if (!move) {
            return [...head, h('button', { type: 'button', class: 'button button--quiet',
                testid: 'move-show', text: S.move.show, onclick: () => actions.showMove(true) })];
        }
        const inputId = uid('move-link');
        return [...head,
            h('p', { class: 'move-warning', role: 'note', testid: 'move-warning',
                text: S.move.warning }),
            move.qr ?? h('p', { class: 'quiet', text: S.move.qrFailed }),
            h('div', { class: 'link-box' },
                h('label', { for: inputId, text: S.move.linkLabel }),
                h('div', { class: 'link-row' },
                    h('input', { id: inputId, class: 'link-input', type: 'text', readonly: true,
                        value: move.link, testid: 'move-link', spellcheck: 'false',
                        autocomplete: 'off', onfocus: (e) => e.target.select() }),
                    h('button', { type: 'button', class: 'button', testid: 'move-copy',
                        text: S.copyButton, onclick: () => actions.copyMove() }))),
            h('p', { class: 'small', text: S.move.once }),
            h('button', { type: 'button', class: 'button button--secondary', testid: 'move-hide',
                text: S.move.hide, onclick: () => actions.showMove(false) })];
    });
}
