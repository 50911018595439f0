// Tests of static/js/move-view.js: the "continue on another device" section is one button
// until asked; asked, it shows the warning, the QR code (made by the vendored generator)
// and the link. Run with `node --test tests/js/`.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import './flow-view-fixtures.mjs';
import qrcode from '../../static/vendor/qrcode.mjs';
import { qrSvg, renderMove } from '../../static/js/move-view.js';
import { S } from '../../static/js/strings.js';

const LINK = `https://thou.example/r/room12345678#move.${'A'.repeat(130)}`;

function section(move) {
    const el = document.createElement('section');
    const calls = [];
    renderMove(el, { ui: { move } }, { showMove: (on) => calls.push(on), copyMove() {} });
    return { el, calls };
}

const byId = (el, id) => el.querySelector(`[data-testid=${id}]`);

describe('continue on another device', () => {
    test('folded: a button, no link, no code', () => {
        const { el, calls } = section(null);
        assert.equal(byId(el, 'move-link'), null);
        assert.equal(byId(el, 'move-qr'), null);
        assert.equal(byId(el, 'move-warning'), null);
        byId(el, 'move-show').dispatchEvent(new window.Event('click'));
        assert.deepEqual(calls, [true]);
    });

    test('asked: the warning, the code and the link, and a way to hide them', () => {
        const qr = qrSvg(qrcode, LINK);
        const { el, calls } = section({ id: 'x1', link: LINK, qr });
        assert.equal(byId(el, 'move-warning').textContent, S.move.warning);
        assert.equal(byId(el, 'move-link').value, LINK);
        assert.ok(byId(el, 'move-qr'), 'the QR code is in the section');
        assert.equal(el.dataset.key.includes('#'), false, 'the secret is not kept in attributes');
        byId(el, 'move-hide').dispatchEvent(new window.Event('click'));
        assert.deepEqual(calls, [false]);
    });

    test('the QR code: a square of modules, only attributes, dark modules drawn', () => {
        const svg = qrSvg(qrcode, LINK);
        const n = Number(svg.getAttribute('data-modules'));
        assert.ok(n >= 21 && (n - 17) % 4 === 0, `a QR version's size: ${n}`);
        assert.equal(svg.getAttribute('viewBox'), `0 0 ${n + 8} ${n + 8}`);
        assert.equal(svg.getAttribute('style'), null);
        const path = svg.querySelector('path').getAttribute('d');
        /* the three finder patterns' corners are dark */
        for (const [x, y] of [[4, 4], [n + 3, 4], [4, n + 3]]) {
            assert.ok(path.includes(`M${x} ${y}h1`), `module at ${x},${y}`);
        }
        assert.equal(qrSvg(qrcode, 'x'.repeat(4000)), null, 'too long for any QR code: none');
    });
});
