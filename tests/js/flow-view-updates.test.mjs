// The flow view redrawn on one page as the store changes: each part follows what it shows
// (and only rebuilds what changed, so typing and focus survive), the page's frame, and
// where the focus goes when it becomes this person's move.

import assert from 'node:assert/strict';
import { beforeEach, describe, test } from 'node:test';

import {
    makeStore, makeFlow, makeActions, freshMain, byId, allById, part, texts, click,
    addEntry, focusLog, same, submit,
} from './flow-view-fixtures.mjs';

const { renderTalk, renderEnded } = await import('../../static/js/flow-view.js');
const { S } = await import('../../static/js/strings.js');

beforeEach(() => {
    focusLog.length = 0;
});

function talk(store) {
    const main = freshMain();
    const actions = makeActions();
    const draw = () => renderTalk(main, store, actions);
    draw();
    return { main, actions, draw };
}

describe('the frame', () => {
    test('the parts of the talk screen, with their roles and labels', () => {
        const { main } = talk(makeStore());
        assert.equal(main.dataset.talk, '1');
        assert.deepEqual([...main.children].map((c) => [c.tagName, c.className,
            c.getAttribute('data-part')]), [
            ['NAV', 'progress', 'progress'], ['SECTION', 'stage', 'stage'],
            ['SECTION', 'reveal-read', 'reveal-read'],
            ['SECTION', 'card question', 'question'], ['SECTION', 'card notes', 'notes'],
            ['SECTION', 'history', 'history'], ['SECTION', 'controls', 'controls'],
            ['SECTION', 'move', 'move'], ['SECTION', 'erase', 'erase']]);
        /* "Continue on another device" is one button until asked: no link on screen. */
        same(byId(part(main, 'move'), 'move-show'), byId(main, 'move-show'), 'the move button');
        same(byId(main, 'move-link'), null, 'no move link until asked');
        same(byId(main, 'erase-section'), part(main, 'erase'), 'erasing, apart from the controls');
        same(byId(part(main, 'erase'), 'erase-button'), byId(main, 'erase-button'),
            'the erase button');
        same(byId(part(main, 'controls'), 'erase-button'), null, 'no erase button among controls');
        assert.equal(part(main, 'notes').getAttribute('aria-labelledby'), 'notes-title');
        assert.deepEqual([...part(main, 'question').children]
            .map((c) => c.getAttribute('data-part')),
        ['question-head', 'thread', 'hint', 'action']);
        assert.equal(part(main, 'action').className, 'action');
        same(byId(main, 'turn').parentElement, part(main, 'question-head'), 'the turn line');
        assert.equal(part(main, 'stage').querySelector('h1').className, 'stage-title');
        assert.equal(part(main, 'stage').querySelector('.stage-intro').tagName, 'P');
        /* during a stage its introduction folds away under "About this stage" */
        same(byId(main, 'stage-intro').parentElement, byId(main, 'stage-about'), 'the intro');
        assert.equal(byId(main, 'stage-about').tagName, 'DETAILS');
        assert.equal(byId(main, 'stage-about').querySelector('summary').textContent,
            S.stageAbout);
        assert.equal(byId(main, 'progress-text').className, 'progress-text');
        assert.equal(main.querySelector('.progress-head').contains(byId(main, 'progress-text')),
            true);
    });

    test('the ended screen\'s parts', () => {
        const main = freshMain();
        renderEnded(main, makeStore({ flow: { status: 'ended' } }), makeActions());
        assert.equal(main.dataset.ended, '1');
        assert.deepEqual([...main.children].map((c) => [c.className,
            c.getAttribute('data-part')]), [
            ['card ended', 'ended-head'], ['', 'differ'], ['history history--open', 'history'],
            ['notes', 'ended-notes'], ['controls', 'controls'], ['erase', 'erase']]);
        assert.equal(part(main, 'controls').getAttribute('aria-label'), S.controlsLabel);
        assert.equal(byId(main, 'erase-button').className, 'button button--quiet');
        same(byId(main, 'erase-button').parentElement, part(main, 'erase'), 'the erase button');
    });

    test('entries of notes carry no question', () => {
        const { main } = talk(makeStore({ entries: [{ seq: 3, role: 'B', type: 'note',
            question: null, text: 'hi' }] }));
        const entry = byId(byId(main, 'notes'), 'entry');
        assert.equal(entry.dataset.question, '');
        assert.equal(entry.dataset.type, 'note');
        assert.equal(entry.className, 'entry entry--partner entry--note');
    });
});

describe('each part follows the store', () => {
    test('progress: the index, the total and the stage', () => {
        const store = makeStore();
        const { main, draw } = talk(store);
        assert.equal(byId(main, 'progress-text').textContent, S.progressText(0, 3));
        store.room.flow.progress = { index: 1, total: 3 };
        draw();
        assert.equal(byId(main, 'progress-text').textContent, S.progressText(1, 3));
        store.room.flow.progress = { index: 1, total: 5 };
        draw();
        assert.equal(byId(main, 'progress-text').textContent, S.progressText(1, 5));
        store.room.flow.stage = 2;
        draw();
        assert.deepEqual([...main.querySelectorAll('ol.stages li')].map((li) => li.className),
            ['stage-done', 'stage-done', 'stage-current']);
        /* during a stage the stage count is the summary of the folded stage list */
        assert.equal(byId(main, 'stages-fold').querySelector('summary').textContent,
            S.stageLabel(2, 3));
        same(main.querySelector('.stage-count'), null, 'no stage count above the question');
        assert.equal(byId(main, 'stage-title').textContent, 'Last');
        /* at the gate before the stage, the count and the introduction are open */
        store.room.flow.status = 'voting';
        draw();
        assert.equal(main.querySelector('.stage-count').textContent, S.stageLabel(2, 3));
        assert.equal(byId(main, 'stages-fold').querySelector('summary').textContent,
            S.stageLabel(2, 3));
        same(byId(main, 'stage-about'), null, 'the introduction is not folded at the gate');
        assert.equal(byId(main, 'stage-intro').textContent, 'The end.');
    });

    test('the question head: the question and whose turn', () => {
        const store = makeStore();
        const { main, draw } = talk(store);
        assert.equal(byId(main, 'turn').className, 'turn turn--me');
        store.room.flow = makeFlow({ speaker: 'B', expect: { A: [], B: ['answer'] } });
        draw();
        assert.equal(byId(main, 'turn').className, 'turn turn--partner');
        assert.equal(main.querySelector('.turn-role').textContent,
            ` · ${S.turnWhat.speak.partner}`);
        store.room.flow = makeFlow({ speaker: 'B', question: 'q2',
            expect: { A: [], B: ['answer'] } });
        draw();
        assert.equal(byId(main, 'question-text').textContent, 'What do you need?');
        store.room.flow = makeFlow({ question: 'q2', phase: 'reflect', speaker: 'B',
            expect: { A: ['reflect'], B: [] } });
        draw();
        assert.equal(byId(main, 'turn').className, 'turn turn--me');
        assert.equal(main.querySelector('.turn-role').textContent,
            ` · ${S.turnWhat.reflect.me}`);
    });

    test('the thread: new entries, the reveal, a changed error, the connection', () => {
        const store = makeStore({ flow: { question: 'r1', phase: 'reveal_write', speaker: null,
            expect: { A: ['answer', 'pass'], B: ['answer', 'pass'] } } });
        const { main, draw } = talk(store);
        assert.equal(allById(part(main, 'thread'), 'entry').length, 0);
        addEntry(store.log, { seq: 4, role: 'A', type: 'answer', question: 'r1', text: 'mine' });
        draw();
        assert.equal(allById(part(main, 'thread'), 'entry').length, 1);
        addEntry(store.log, { seq: 5, role: 'B', type: 'answer', question: 'r1', text: 'hers' });
        draw();
        same(byId(main, 'reveal'), null, 'no reveal yet');
        store.log.revealed.set('r1', 6);
        draw();
        assert.equal(byId(byId(main, 'reveal-partner'), 'entry-text').textContent, 'hers');

        store.local.set('x', { type: 'reflect', question: 'r1', text: 't', state: 'failed',
            error: 'wrong_step' });
        draw();
        const state = () => byId(part(main, 'thread'), 'entry-state').textContent;
        assert.equal(state(), `${S.stateFailed(S.failedReasons.wrong_step)} ${S.failedRestored}`);
        store.local.get('x').error = 'room_ended';
        draw();
        assert.equal(state(), `${S.stateFailed(S.failedReasons.room_ended)} ${S.failedRestored}`);
        store.local.get('x').state = 'sending';
        draw();
        assert.equal(state(), S.stateSending);
        store.sendTrouble = true;
        draw();
        assert.equal(state(), S.stateSendingOffline);
        store.sendTrouble = false;
        draw();
        assert.equal(state(), S.stateSending);
        store.online = false;
        draw();
        assert.equal(state(), S.stateSendingOffline);
    });

    test('the hint: per question, and gone when the listener is not listening', () => {
        const store = makeStore({ role: 'B' });
        const { main, draw } = talk(store);
        assert.ok(byId(main, 'hint').textContent.includes('Listen for the feeling.'));
        store.room.flow = makeFlow({ question: 'r1', phase: 'reveal_reflect', speaker: null });
        draw();
        assert.ok(byId(main, 'hint').textContent.includes('Read slowly.'));
        assert.equal(main.querySelector('.hint-label').textContent, S.hintLabelReveal);
        store.room.flow = makeFlow({ question: 'r1', phase: 'reveal_write', speaker: null });
        draw();
        same(byId(main, 'hint'), null, 'no hint');
        assert.equal(part(main, 'hint').children.length, 0);
        assert.equal(part(main, 'hint').textContent, '');
    });

    test('the title follows the step', () => {
        const store = makeStore();
        const { draw } = talk(store);
        assert.equal(document.title, S.titleYourTurn);
        store.room.flow = makeFlow({ phase: 'reflect', expect: { A: [], B: ['reflect'] } });
        draw();
        assert.equal(document.title, S.titleRoom);
    });

    test('the ended screen: notes arriving, erase asked and busy', () => {
        const store = makeStore({ flow: { status: 'ended', finished: false } });
        const main = freshMain();
        const actions = makeActions();
        renderEnded(main, store, actions);
        assert.equal(part(main, 'ended-notes').children.length, 0);
        addEntry(store.log, { seq: 4, role: 'B', type: 'note', question: null, text: 'bye' });
        renderEnded(main, store, actions);
        assert.equal(part(main, 'ended-notes').querySelectorAll('.entry-text').length, 1);
        store.ui.confirming = 'erase';
        renderEnded(main, store, actions);
        assert.equal(byId(main, 'erase-confirm-yes').textContent, S.eraseConfirm);
        store.ui.busy = true;
        renderEnded(main, store, actions);
        assert.equal(byId(main, 'erase-confirm-yes').textContent, S.erasing);
        addEntry(store.log, { seq: 5, role: 'A', type: 'answer', question: 'q1', text: 'late' });
        renderEnded(main, store, actions);
        assert.deepEqual(texts(allById(part(main, 'history'), 'entry-text')), ['late']);
    });
});

describe('focus when it becomes my move', () => {
    test('from nowhere in particular to the box, without scrolling', () => {
        const store = makeStore({ role: 'B' });
        const { main, draw } = talk(store);
        assert.equal(focusLog.length, 0, 'waiting takes no focus');
        store.room.flow = makeFlow({ phase: 'reflect', expect: { A: [], B: ['reflect'] } });
        draw();
        assert.equal(focusLog.length, 1);
        same(focusLog[0].el, byId(main, 'compose-input'), 'focus');
        assert.deepEqual(focusLog[0].options, { preventScroll: true });
    });

    test('from within the action area to the first button of the next step', () => {
        const store = makeStore();
        const { main, draw } = talk(store);
        byId(main, 'pass-button').focus();
        store.room.flow = makeFlow({ phase: 'confirm', expect: { A: ['confirm_heard'], B: [] } });
        draw();
        same(document.activeElement, byId(main, 'confirm-heard-button'), 'focus');
        assert.deepEqual(focusLog.at(-1).options, { preventScroll: true });
    });

    test('not when the next step is not mine, nor when nothing changed', () => {
        const store = makeStore();
        const { main, draw } = talk(store);
        const box = byId(main, 'compose-input');
        const count = focusLog.length;
        draw();
        assert.equal(focusLog.length, count, 'the same step: no new focus');
        same(document.activeElement, box, 'focus');
        store.room.flow = makeFlow({ phase: 'reflect', expect: { A: [], B: ['reflect'] } });
        draw();
        assert.equal(focusLog.length, count);
        click(byId(main, 'pause-button'));
    });
});

describe('every path renders what a browser would', () => {
    const step = (flow, over = {}) => makeStore({ flow, ...over });
    const stores = [
        ['speak', step({})],
        ['waiting', step({}, { role: 'B' })],
        ['reflect', step({ phase: 'reflect', expect: { A: [], B: ['reflect'] } }, { role: 'B' })],
        ['confirm', step({ phase: 'confirm', expect: { A: ['confirm_heard', 'add'], B: [] } })],
        ['adding', step({ phase: 'confirm', expect: { A: ['confirm_heard', 'add'], B: [] } },
            { ui: { adding: true } })],
        ['reveal write', step({ question: 'r1', phase: 'reveal_write', speaker: null,
            expect: { A: ['answer'], B: [] } })],
        ['reveal reflect', step({ question: 'r1', phase: 'reveal_reflect', speaker: null,
            expect: { A: ['reflect'], B: [] } })],
        ['paused', step({ status: 'paused' })],
        ['held', step({ status: 'held' })],
        ['sync', step({}, { lastFlowSeq: 99 })],
        ['sending', step({}, { local: [['1', { type: 'answer', question: 'q1', text: 't',
            state: 'sending' }]] })],
        ['end asked', step({}, { ui: { confirming: 'end' } })],
        ['erase asked', step({}, { ui: { confirming: 'erase' } })],
        ['every kind of entry', step({ question: 'q2' }, { entries: [
            { seq: 2, role: 'A', type: 'answer', question: 'q1', text: 'a' },
            { seq: 3, role: 'B', type: 'reflect', question: 'q1', text: 'r' },
            { seq: 4, role: 'A', type: 'add', question: 'q1', text: 'd' },
            { seq: 5, role: 'A', type: 'confirm_heard', question: 'q1' },
            { seq: 6, role: 'B', type: 'pass', question: 'q2' },
            { seq: 7, role: 'B', type: 'pause', question: 'q2' },
            { seq: 8, role: 'A', type: 'answer', question: 'q2', unreadable: true },
            { seq: 9, role: 'B', type: 'note', question: null, text: 'n' },
            { seq: 10, role: 'A', type: 'answer', question: 'r1', text: 'x' },
        ], local: [['1', { type: 'answer', question: 'q2', text: 't', state: 'failed',
            error: 'paused' }], ['2', { type: 'note', question: null, text: 'm', state: 'sent' }]],
        revealed: [['r1', 11]] })],
    ];
    for (const [name, store] of stores) {
        test(name, () => {
            const { main } = talk(store);
            assert.ok(main.querySelectorAll('*').length > 20);
        });
    }

    test('the ended screen, finished, with notes and history', () => {
        const main = freshMain();
        renderEnded(main, makeStore({ flow: { status: 'ended', finished: true }, entries: [
            { seq: 2, role: 'A', type: 'answer', question: 'q1', text: 'a' },
            { seq: 3, role: 'B', type: 'note', question: null, text: 'n' }] }), makeActions());
        assert.ok(byId(main, 'history-item'));
        renderEnded(main, makeStore({ flow: { status: 'ended' }, ui: { confirming: 'erase' } }),
            makeActions());
    });

    test('texts of entries carry their test ids', () => {
        const { main } = talk(makeStore({ entries: [
            { seq: 2, role: 'A', type: 'answer', question: 'q1', text: 'a' },
            { seq: 3, role: 'B', type: 'pass', question: 'q1' }] }));
        assert.deepEqual(texts(allById(part(main, 'thread'), 'entry-text')), ['a',
            S.partnerPassed]);
        const thread = byId(part(main, 'thread'), 'thread');
        assert.equal(thread.className, 'thread');
    });
});

describe('reveal-together details', () => {
    const flow = { question: 'r1', phase: 'reveal_reflect', speaker: null };

    test('only my own answer is marked private, and only before the reveal', () => {
        const { main } = talk(makeStore({ flow: { ...flow, phase: 'reveal_write' }, entries: [
            { seq: 4, role: 'B', type: 'answer', question: 'r1', text: 'theirs' },
            { seq: 5, role: 'A', type: 'reflect', question: 'r1', text: 'my reflect' },
            { seq: 6, role: 'A', type: 'answer', question: 'r1', text: 'mine' }] }));
        const thread = byId(part(main, 'thread'), 'thread');
        assert.equal(thread.className, 'thread');
        const notes = allById(thread, 'entry').map((e) => e.querySelector('.quiet.small')
            ?.textContent ?? null);
        assert.deepEqual(notes, [null, null, S.privateUntilReveal]);
    });

    test('a normal question marks nothing private', () => {
        const { main } = talk(makeStore({ entries: [
            { seq: 4, role: 'A', type: 'answer', question: 'q1', text: 'mine' }] }));
        same(byId(part(main, 'thread'), 'entry').querySelector('.quiet.small'), null,
            'no private note');
    });

    for (const [name, mine, note] of [['my pass', { type: 'pass' }, S.revealYouPassed],
        ['my answer', { type: 'answer', text: 'x' }, S.revealDiffer]]) {
        test(`the partner's part missing, with ${name}`, () => {
            const { main } = talk(makeStore({ flow, revealed: [['r1', 6]], entries: [
                { seq: 5, role: 'A', question: 'r1', ...mine }] }));
            assert.equal(byId(main, 'reveal-note').textContent, note);
            same(byId(byId(main, 'reveal-partner'), 'entry'), null, 'no partner part');
            const thread = byId(part(main, 'thread'), 'thread');
            assert.equal(thread.className, 'thread');
            assert.equal(byId(main, 'reveal').className, 'reveal');
            assert.equal(main.querySelector('.reveal-grid').children.length, 2);
        });
    }

    test('the same answer, spaces aside, on either side', () => {
        for (const [a, b] of [['same', '  same '], [' same', 'same  ']]) {
            const { main } = talk(makeStore({ flow, revealed: [['r1', 6]], entries: [
                { seq: 4, role: 'B', type: 'answer', question: 'r1', text: b },
                { seq: 5, role: 'A', type: 'answer', question: 'r1', text: a }] }));
            assert.equal(byId(main, 'reveal-note').textContent, S.revealSame);
        }
    });
});

describe('compose and confirm details', () => {
    test('the confirm step\'s pieces', () => {
        const { main } = talk(makeStore({ flow: { phase: 'confirm',
            expect: { A: ['confirm_heard', 'add'], B: [] } } }));
        const step = byId(main, 'confirm-step');
        assert.equal(step.querySelector('.prompt').tagName, 'P');
        const buttons = step.querySelector('.buttons');
        assert.equal(buttons.tagName, 'DIV');
        assert.deepEqual([...buttons.children].map((b) => [b.tagName, b.getAttribute('type'),
            b.className]), [['BUTTON', 'button', 'button'],
            ['BUTTON', 'button', 'button button--secondary'],
            ['BUTTON', 'button', 'button button--quiet']]);
        assert.equal(buttons.lastElementChild.textContent, S.passConfirm);
        assert.equal(step.lastElementChild.className, 'quiet small');
        assert.equal(step.lastElementChild.textContent, S.passConfirmHelp);
    });

    test('the compose form\'s pieces', () => {
        const { main, actions } = talk(makeStore({ role: 'B', flow: { phase: 'reflect',
            expect: { A: [], B: ['reflect'] } } }));
        const form = byId(main, 'compose');
        assert.equal(form.tagName, 'FORM');
        const buttons = form.querySelector('.buttons');
        assert.deepEqual([...buttons.children].map((b) => b.className),
            ['button', 'button button--quiet']);
        assert.equal(form.querySelector('.form-error').tagName, 'P');
        assert.equal(form.lastElementChild.className, 'quiet small');
        submit(form);
        assert.equal(actions.calls.filter(([n]) => n === 'compose').length, 0);
    });
});
