// Tests of the workshop modules that need no server: which screen comes before the
// conversation (the safety-code rule), the countdown text, and join codes as typed.
// Run with `node --test tests/js/` after script/vendor-js.

import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { parseHTML } from 'linkedom';

let view;
let countdown;
let join;

before(async () => {
    const { window } = parseHTML('<!doctype html><html><body></body></html>');
    globalThis.document = window.document;
    view = await import('../../static/js/workshop-view.js');
    countdown = await import('../../static/js/countdown.js');
    join = await import('../../static/js/workshop-join.js');
});

const store = (record, safetyCode = '028953') => ({
    workshop: {}, record: { role: 'A', ...record }, safetyCode, ui: {},
});

describe('workshop room screens', () => {
    test('the safety code comes first, until this person said "same"', () => {
        assert.equal(view.workshopScreenOf(store({})), 'safetyCode');
        assert.equal(view.workshopScreenOf(store({}, null)), 'keying');
        assert.equal(view.workshopScreenOf(store({ codeConfirmed: false })), 'codeMismatch');
        assert.equal(view.workshopScreenOf(store({ codeConfirmed: true })), null);
        /* "No" stays "No", even before the code is known again after a reload */
        assert.equal(view.workshopScreenOf(store({ codeConfirmed: false }, null)), 'codeMismatch');
    });

    test('link-mode rooms have no workshop screen', () => {
        assert.equal(view.workshopScreenOf({ workshop: null, record: {} }), null);
    });

    test('the code is shown in two groups of three, and read digit by digit', () => {
        const el = view.safetyCodeScreen(store({}), { sameCode() {} });
        const sas = el.querySelector('[data-testid=sas-code]');
        assert.equal(sas.textContent, '028 953');
        assert.equal(sas.getAttribute('aria-label'), 'Your code: 0 2 8 9 5 3');
        assert.ok(el.querySelector('[data-testid=sas-yes]'));
        assert.ok(el.querySelector('[data-testid=sas-no]'));
    });

    test('the facilitator bar shows the note and a live countdown only', () => {
        const now = Date.now();
        const s = store({ codeConfirmed: true });
        s.facilitator = { note: null, timerEnds: null, ended: false };
        assert.equal(view.facilitatorBar(s), null);
        s.facilitator.timerEnds = now - 1000;
        assert.equal(view.facilitatorBar(s), null, 'a countdown that is over is not shown');
        s.facilitator = { note: 'Five more minutes', timerEnds: now + 65000, ended: false };
        const bar = view.facilitatorBar(s);
        assert.equal(bar.querySelector('[data-testid=facilitator-note]').textContent,
            'Five more minutes');
        assert.match(bar.querySelector('[data-testid=facilitator-timer]').textContent, /^1:0[45]$/);
        s.facilitator.ended = true;
        assert.equal(view.facilitatorBar(s), null);
    });
});

describe('countdown', () => {
    test('m:ss, rounded up, never below zero', () => {
        assert.equal(countdown.countdownText(10000 + 300000, 10000), '5:00');
        assert.equal(countdown.countdownText(10000 + 61001, 10000), '1:02');
        assert.equal(countdown.countdownText(10000 + 999, 10000), '0:01');
        assert.equal(countdown.countdownText(5000, 10000), '0:00');
    });
});

describe('join codes', () => {
    test('read case-insensitively, without dashes or spaces', () => {
        assert.equal(join.normaliseCode(' k7qm-3xpa '), 'K7QM3XPA');
        assert.equal(join.normaliseCode('K7QM 3XPA'), 'K7QM3XPA');
        assert.equal(join.groupWorkshopCode('k7qm3xpa'), 'K7QM-3XPA');
    });
});
