// Tests of static/js/flow-view.js, the conversation screen, rendered into a small DOM
// (tests/js/flow-view-fixtures.mjs):
// what each step offers, the thread (with reveal-together questions), entry states, notes,
// history, controls and the ended screen, and that every input goes to `actions`.

import assert from 'node:assert/strict';
import { beforeEach, describe, test } from 'node:test';

import {
    dom, makeStore, makeFlow, makeActions, freshMain, byId, allById, part, texts, click,
    submit, addEntry, same, SET,
} from './flow-view-fixtures.mjs';

const { stepOf, renderTalk, renderEnded } = await import('../../static/js/flow-view.js');
const { S } = await import('../../static/js/strings.js');

function render(store, actions = makeActions()) {
    const main = freshMain();
    renderTalk(main, store, actions);
    return { main, actions };
}

beforeEach(() => {
    document.body.replaceChildren();
    document.title = '';
});

/* ---------------------------------------------------------------- stepOf */

describe('stepOf: what this person can do now', () => {
    const base = (flow) => ({ question: flow.question ?? 'q1', phase: flow.phase ?? 'speak',
        speaker: flow.speaker === undefined ? 'A' : flow.speaker, rounds: flow.rounds ?? 0 });

    const cases = [
        ['paused, by nobody on record', { flow: { status: 'paused' } },
            { kind: 'paused', by: 'either' }],
        ['paused by me', { flow: { status: 'paused', paused_by: 'A' } },
            { kind: 'paused', by: 'me' }],
        ['paused by the partner', { role: 'B', flow: { status: 'paused', paused_by: 'A' } },
            { kind: 'paused', by: 'partner' }],
        ['a stage vote, mine to make', { flow: { status: 'voting', votes: { B: true } } },
            { kind: 'vote', voted: false }],
        ['a stage vote, mine made', { flow: { status: 'voting', votes: { A: true } } },
            { kind: 'vote', voted: true }],
        ['a stage vote with my choice on its way', { flow: { status: 'voting' },
            local: [['x', { type: 'go_on', state: 'sending' }]] }, { kind: 'sending' }],
        ['held', { flow: { status: 'held' } }, { kind: 'held' }],
        ['speak, my move', {}, { kind: 'compose', type: 'answer' }],
        ['speak, the partner answers', { role: 'B' }, { kind: 'wait', text: S.waitSpeak }],
        ['reflect, mine', { role: 'B', flow: { phase: 'reflect', expect: { A: [],
            B: ['reflect', 'pass'] } } }, { kind: 'compose', type: 'reflect' }],
        ['reflect, the partner', { flow: { phase: 'reflect', expect: { A: [],
            B: ['reflect', 'pass'] } } }, { kind: 'wait', text: S.waitReflect }],
        ['confirm, mine', { flow: { phase: 'confirm', rounds: 1, expect: {
            A: ['confirm_heard', 'add', 'pass'], B: [] } } }, { kind: 'confirm' }],
        ['confirm, mine, adding', { ui: { adding: true }, flow: { phase: 'confirm', expect: {
            A: ['confirm_heard', 'add', 'pass'], B: [] } } }, { kind: 'compose', type: 'add' }],
        ['confirm, the partner', { role: 'B', flow: { phase: 'confirm', expect: {
            A: ['confirm_heard', 'add', 'pass'], B: [] } } }, { kind: 'wait', text: S.waitConfirm }],
        ['confirm, only add offered', { flow: { phase: 'confirm', expect: { A: ['add'], B: [] } } },
            { kind: 'wait', text: S.waitConfirm }],
        ['reveal_write, mine', { flow: { question: 'r1', phase: 'reveal_write', speaker: null,
            expect: { A: ['answer', 'pass'], B: ['answer', 'pass'] } } },
        { kind: 'compose', type: 'answer', reveal: true }],
        ['reveal_write, written', { flow: { question: 'r1', phase: 'reveal_write', speaker: null,
            expect: { A: [], B: ['answer', 'pass'] } } },
        { kind: 'wait', text: S.waitRevealWrite }],
        ['reveal_reflect, mine', { role: 'B', flow: { question: 'r1', phase: 'reveal_reflect',
            speaker: null, expect: { A: [], B: ['reflect', 'pass'] } } },
        { kind: 'compose', type: 'reflect', reveal: true }],
        ['reveal_reflect, done', { flow: { question: 'r1', phase: 'reveal_reflect', speaker: null,
            expect: { A: [], B: ['reflect', 'pass'] } } },
        { kind: 'wait', text: S.waitRevealReflect }],
        ['no expect at all', { flow: { expect: undefined } }, { kind: 'wait', text: S.waitSpeak }],
        ['no expect for my role', { flow: { expect: { B: ['answer'] } } },
            { kind: 'wait', text: S.waitSpeak }],
        ['a phase it does not know', { flow: { phase: 'done' } }, { kind: 'sync' }],
        ['events newer than the room state', { lastFlowSeq: 11 }, { kind: 'sync' }],
        ['a flow event of mine on its way', { local: [['x', { type: 'pass', state: 'sending' }]] },
            { kind: 'sending' }],
    ];
    for (const [name, options, want] of cases) {
        test(name, () => {
            const store = makeStore(options);
            assert.deepEqual(stepOf(store), { ...base(store.room.flow), ...want });
        });
    }

    test('a failed flow event or a note on its way does not count as sending', () => {
        const store = makeStore({ local: [['x', { type: 'answer', state: 'failed' }],
            ['y', { type: 'note', state: 'sending' }]] });
        assert.equal(stepOf(store).kind, 'compose');
    });

    test('paused and held win over sending and sync', () => {
        for (const status of ['paused', 'held']) {
            const store = makeStore({ flow: { status }, lastFlowSeq: 99,
                local: [['x', { type: 'answer', state: 'sending' }]] });
            assert.equal(stepOf(store).kind, status);
        }
        const store = makeStore({ lastFlowSeq: 99, local: [['x', { type: 'answer',
            state: 'sending' }]] });
        assert.equal(stepOf(store).kind, 'sending');
        assert.equal(stepOf(makeStore({ lastFlowSeq: 10 })).kind, 'compose');
    });
});

/* ---------------------------------------------------------------- the talk screen */

describe('the talk screen', () => {
    test('progress, stage and question', () => {
        const { main } = render(makeStore({ flow: { stage: 1, question: 'q2',
            progress: { index: 1, total: 3 } } }));
        assert.equal(byId(main, 'progress-text').textContent, S.progressText(1, 3));
        const bar = main.querySelector('progress');
        assert.equal(bar.getAttribute('max'), '3');
        assert.equal(Number(bar.value), 1);
        assert.equal(bar.getAttribute('aria-label'), S.progressText(1, 3));
        assert.equal(bar.className, 'progress-bar');
        const stages = [...main.querySelectorAll('ol.stages li')];
        assert.deepEqual(texts(stages), SET.stages.map((s) => s.title));
        assert.deepEqual(stages.map((li) => li.className), ['stage-done', 'stage-current', '']);
        assert.deepEqual(stages.map((li) => li.getAttribute('aria-current')), [null, 'step', null]);
        assert.equal(main.querySelector('ol.stages').getAttribute('aria-label'), S.stagesLabel);
        assert.equal(byId(main, 'progress').getAttribute('aria-label'), S.progressLabel);
        assert.equal(byId(main, 'stages-fold').querySelector('summary').textContent,
            S.stageLabel(1, 3));
        assert.equal(byId(main, 'stage-title').textContent, 'Differences');
        assert.equal(byId(main, 'stage-intro').textContent, 'Side by side.');
        assert.equal(byId(main, 'question-text').textContent, 'What do you need?');
        assert.equal(byId(main, 'question-text').id, 'question-text');
        assert.equal(byId(main, 'question').getAttribute('aria-labelledby'), 'question-text');
        assert.equal(part(main, 'controls').getAttribute('aria-label'), S.controlsLabel);
        assert.equal(main.querySelector('.question-head, [data-part="question-head"] .quiet'),
            null, 'no reveal explanation on a normal question');
    });

    test('an unknown question or stage renders empty texts, not undefined', () => {
        const { main } = render(makeStore({ flow: { stage: 7, question: 'nope' } }));
        assert.equal(byId(main, 'question-text').textContent, '');
        assert.equal(byId(main, 'stage-title').textContent, '');
        assert.equal(byId(main, 'stage-intro').textContent, '');
    });

    test('whose turn: me as speaker, partner as speaker, both', () => {
        let { main } = render(makeStore());
        let turn = byId(main, 'turn');
        assert.equal(turn.className, 'turn turn--me');
        assert.equal(turn.querySelector('.turn-who').textContent, S.turnYou);
        assert.equal(turn.querySelector('.turn-role').textContent, ` · ${S.turnWhat.speak.me}`);

        ({ main } = render(makeStore({ role: 'B' })));
        turn = byId(main, 'turn');
        assert.equal(turn.className, 'turn turn--partner');
        assert.equal(turn.querySelector('.turn-who').textContent, S.turnPartner);
        assert.equal(turn.querySelector('.turn-role').textContent,
            ` · ${S.turnWhat.speak.partner}`);

        /* In reflect the listener acts; in confirm the speaker again. */
        ({ main } = render(makeStore({ role: 'B', flow: { phase: 'reflect' } })));
        assert.equal(byId(main, 'turn').className, 'turn turn--me');
        assert.equal(main.querySelector('.turn-role').textContent, ` · ${S.turnWhat.reflect.me}`);
        ({ main } = render(makeStore({ role: 'B', flow: { phase: 'reflect', speaker: 'B' } })));
        assert.equal(byId(main, 'turn').className, 'turn turn--partner');
        assert.equal(main.querySelector('.turn-role').textContent,
            ` · ${S.turnWhat.reflect.partner}`);
        ({ main } = render(makeStore({ role: 'B', flow: { phase: 'confirm', speaker: 'B' } })));
        assert.equal(byId(main, 'turn').className, 'turn turn--me');
        assert.equal(main.querySelector('.turn-role').textContent, ` · ${S.turnWhat.confirm.me}`);

        /* While paused it is nobody's turn, whoever paused. */
        for (const pausedBy of [undefined, 'A', 'B']) {
            ({ main } = render(makeStore({ flow: { status: 'paused', paused_by: pausedBy } })));
            turn = byId(main, 'turn');
            assert.equal(turn.className, 'turn turn--paused');
            assert.equal(turn.querySelector('.turn-who').textContent, S.turnPaused);
            same(turn.querySelector('.turn-role'), null, 'no role while paused');
        }

        for (const phase of ['reveal_write', 'reveal_reflect']) {
            ({ main } = render(makeStore({ flow: { question: 'r1', phase, speaker: null } })));
            turn = byId(main, 'turn');
            assert.equal(turn.className, 'turn turn--both');
            assert.equal(turn.querySelector('.turn-who').textContent, S.turnBoth);
            same(turn.querySelector('.turn-role'), null, 'the element');
            assert.ok(main.textContent.includes(S.revealExplain));
        }
    });

    test('the hint is for the listener only', () => {
        let { main } = render(makeStore({ role: 'B' }));
        assert.equal(byId(main, 'hint').querySelector('.hint-label').textContent, S.hintLabel);
        assert.ok(byId(main, 'hint').textContent.includes('Listen for the feeling.'));
        assert.equal(byId(main, 'hint').className, 'hint');
        ({ main } = render(makeStore({ role: 'B', flow: { phase: 'reflect' } })));
        assert.ok(byId(main, 'hint'));
        ({ main } = render(makeStore({ role: 'B', flow: { phase: 'confirm' } })));
        same(byId(main, 'hint'), null, 'not while the speaker confirms');
        ({ main } = render(makeStore({ role: 'A' })));
        same(byId(main, 'hint'), null, 'not for the speaker');
        ({ main } = render(makeStore({ role: 'B', flow: { question: 'q2' } })));
        same(byId(main, 'hint'), null, 'not when the question has none');
        ({ main } = render(makeStore({ flow: { question: 'r1', phase: 'reveal_reflect',
            speaker: null } })));
        assert.equal(byId(main, 'hint').querySelector('.hint-label').textContent,
            S.hintLabelReveal);
        ({ main } = render(makeStore({ flow: { question: 'r1', phase: 'reveal_write',
            speaker: null } })));
        same(byId(main, 'hint'), null, 'not while writing privately');
    });

    test('title and noteStep say whether it is my move', () => {
        let { actions } = render(makeStore({ flow: { rounds: 2 } }));
        assert.equal(document.title, S.titleYourTurn);
        assert.deepEqual(actions.calls.at(-1), ['noteStep', 'q1|speak|A|2|active', true]);
        ({ actions } = render(makeStore({ flow: { phase: 'confirm', expect: {
            A: ['confirm_heard'], B: [] } } })));
        assert.equal(document.title, S.titleYourTurn);
        ({ actions } = render(makeStore({ role: 'B' })));
        assert.equal(document.title, S.titleRoom);
        assert.deepEqual(actions.calls.at(-1), ['noteStep', 'q1|speak|A|0|active', false]);
        /* a stage vote is my move until I have chosen */
        ({ actions } = render(makeStore({ role: 'B', flow: { status: 'voting' } })));
        assert.equal(document.title, S.titleYourTurn);
        assert.deepEqual(actions.calls.at(-1), ['noteStep', 'q1|speak|A|0|voting', true]);
        ({ actions } = render(makeStore({ role: 'B', flow: { status: 'voting',
            votes: { B: true } } })));
        assert.equal(document.title, S.titleRoom);
        assert.deepEqual(actions.calls.at(-1), ['noteStep', 'q1|speak|A|0|voting', false]);
    });
});

/* ---------------------------------------------------------------- the action area */

describe('the action area', () => {
    test('composing an answer: label, placeholder, draft, and the send rules', () => {
        const store = makeStore({ drafts: [['restore:answer:q1', 'restored text']] });
        const { main, actions } = render(store);
        const form = byId(main, 'compose');
        assert.equal(form.dataset.kind, 'answer');
        assert.equal(form.className, 'compose');
        assert.ok(form.hasAttribute('novalidate'));
        const area = byId(main, 'compose-input');
        assert.equal(form.querySelector('label').textContent, S.answerLabel);
        assert.equal(form.querySelector('label').getAttribute('for'), area.id);
        assert.equal(form.querySelector('label').className, 'compose-label');
        assert.equal(area.getAttribute('placeholder'), S.answerPlaceholder);
        assert.equal(area.getAttribute('maxlength'), '3000');
        assert.equal(area.getAttribute('rows'), '5');
        assert.equal(area.getAttribute('name'), 'text');
        assert.equal(area.getAttribute('aria-describedby'), null, 'no help for an answer');
        assert.equal(area.value, 'restored text');
        same(document.activeElement, area, 'the box takes the focus');

        area.value = 'typing';
        area.dispatchEvent(new dom.Event('input'));
        const key = actions.calls.find(([n]) => n === 'setDraft')[1];
        assert.deepEqual(actions.calls.find(([n]) => n === 'setDraft'),
            ['setDraft', key, 'typing', 'answer:q1']);
        assert.ok(key.startsWith('q1|speak|A|0|compose|answer|'));

        area.value = '   ';
        submit(form);
        assert.equal(form.querySelector('.form-error').textContent, S.emptyAnswer);
        assert.equal(form.querySelector('.form-error').getAttribute('role'), 'alert');
        assert.equal(actions.calls.filter(([n]) => n === 'compose').length, 0);
        area.value = '  my answer  ';
        submit(form);
        assert.deepEqual(actions.calls.filter(([n]) => n === 'compose'),
            [['compose', 'answer', 'my answer', key]]);

        assert.equal(byId(main, 'compose-send').textContent, S.send);
        assert.equal(byId(main, 'compose-send').getAttribute('type'), 'submit');
        same(byId(main, 'add-cancel'), null, 'the element');
        click(byId(main, 'pass-button'));
        assert.deepEqual(actions.calls.at(-1), ['pass']);
        assert.equal(byId(main, 'pass-button').textContent, S.pass);
        assert.ok(form.textContent.includes(S.passHelp));
    });

    test('a draft under the step key wins over a restored one', () => {
        const store = makeStore();
        const { main, actions } = render(store);
        const key = byId(main, 'compose').parentElement.dataset.key;
        assert.ok(actions);
        const again = makeStore({ drafts: [[key, 'current'], ['restore:answer:q1', 'old']] });
        const { main: main2 } = render(again);
        assert.equal(byId(main2, 'compose-input').value, 'current');
    });

    test('reflecting, adding and the reveal variants', () => {
        let { main } = render(makeStore({ role: 'B', flow: { phase: 'reflect',
            expect: { A: [], B: ['reflect', 'pass'] } } }));
        let area = byId(main, 'compose-input');
        assert.equal(byId(main, 'compose').querySelector('label').textContent, S.reflectLabel);
        assert.equal(area.getAttribute('placeholder'), S.reflectPlaceholder);
        const help = byId(main, 'compose').querySelector('.help');
        assert.equal(help.textContent, S.reflectPrompt);
        assert.equal(area.getAttribute('aria-describedby'), help.id);
        assert.notEqual(help.id, area.id);

        const adding = makeStore({ ui: { adding: true }, flow: { phase: 'confirm',
            expect: { A: ['confirm_heard', 'add', 'pass'], B: [] } } });
        let actions;
        ({ main, actions } = render(adding));
        assert.equal(byId(main, 'compose').dataset.kind, 'add');
        assert.equal(byId(main, 'compose').querySelector('label').textContent, S.addLabel);
        assert.equal(byId(main, 'compose-input').getAttribute('placeholder'), S.addPlaceholder);
        assert.equal(byId(main, 'add-cancel').textContent, S.cancel);
        click(byId(main, 'add-cancel'));
        assert.deepEqual(actions.calls.at(-1), ['startAdding', false]);

        ({ main } = render(makeStore({ flow: { question: 'r1', phase: 'reveal_write',
            speaker: null, expect: { A: ['answer', 'pass'], B: [] } } })));
        assert.equal(byId(main, 'compose').querySelector('label').textContent,
            S.revealWriteLabel);
        assert.equal(byId(main, 'compose-input').getAttribute('placeholder'),
            S.answerPlaceholder);
        same(byId(main, 'compose').querySelector('.help'), null, 'the element');

        ({ main } = render(makeStore({ flow: { question: 'r1', phase: 'reveal_reflect',
            speaker: null, expect: { A: ['reflect', 'pass'], B: [] } } })));
        area = byId(main, 'compose-input');
        assert.equal(byId(main, 'compose').querySelector('label').textContent,
            S.revealReflectLabel);
        assert.equal(area.getAttribute('placeholder'), S.revealReflectPlaceholder);
        assert.equal(byId(main, 'compose').querySelector('.help').textContent,
            S.revealReflectPrompt);
    });

    test('confirming: heard, not quite, pass', () => {
        const { main, actions } = render(makeStore({ flow: { phase: 'confirm',
            expect: { A: ['confirm_heard', 'add', 'pass'], B: [] } } }));
        const step = byId(main, 'confirm-step');
        assert.equal(step.className, 'confirm-heard');
        assert.equal(step.querySelector('.prompt').textContent, S.confirmPrompt);
        assert.equal(byId(main, 'confirm-heard-button').textContent, S.confirmHeard);
        assert.equal(byId(main, 'not-quite-button').textContent, S.notQuite);
        same(document.activeElement, byId(main, 'confirm-heard-button'), 'the element');
        click(byId(main, 'confirm-heard-button'));
        click(byId(main, 'not-quite-button'));
        click(byId(main, 'pass-button'));
        assert.deepEqual(actions.calls.filter(([n]) => n !== 'noteStep'),
            [['confirmHeard'], ['startAdding', true], ['pass']]);
        /* here passing answers "is that what you meant?": it leaves it there */
        assert.equal(byId(main, 'pass-button').textContent, S.passConfirm);
        assert.ok(step.textContent.includes(S.passConfirmHelp));
        assert.ok(!step.textContent.includes(S.passHelp));
    });

    test('waiting, sending, paused, held and sync', () => {
        let { main } = render(makeStore({ role: 'B' }));
        assert.equal(byId(main, 'waiting').textContent, S.waitSpeak);
        assert.equal(byId(main, 'waiting').className, 'waiting');

        const sending = [['x', { type: 'answer', question: 'q1', state: 'sending', text: 't' }]];
        ({ main } = render(makeStore({ local: sending })));
        assert.equal(byId(main, 'waiting-sending').textContent, S.waitSending);
        ({ main } = render(makeStore({ local: sending, sendTrouble: true })));
        assert.equal(byId(main, 'waiting-sending').textContent, S.waitSendingOffline);
        ({ main } = render(makeStore({ local: sending, online: false })));
        assert.equal(byId(main, 'waiting-sending').textContent, S.waitSendingOffline);

        let actions;
        ({ main, actions } = render(makeStore({ flow: { status: 'paused' } })));
        const paused = byId(main, 'paused');
        assert.equal(paused.className, 'paused');
        assert.equal(paused.querySelector('h3').textContent, S.pausedTitle);
        assert.ok(paused.textContent.includes(S.pausedBody));
        assert.equal(byId(main, 'resume-button').textContent, S.resume);
        click(byId(main, 'resume-button'));
        assert.deepEqual(actions.calls.at(-1), ['resume']);

        /* my own pause is mine to lift */
        ({ main, actions } = render(makeStore({ flow: { status: 'paused', paused_by: 'A' } })));
        assert.equal(byId(main, 'paused').dataset.by, 'me');
        assert.equal(byId(main, 'paused-title').textContent, S.pausedByYouTitle);
        assert.ok(byId(main, 'paused').textContent.includes(S.pausedByYouBody));
        click(byId(main, 'resume-button'));
        assert.deepEqual(actions.calls.at(-1), ['resume']);
        /* the partner's pause is theirs: no carry on, a note instead */
        ({ main, actions } = render(makeStore({ role: 'B', flow: { status: 'paused',
            paused_by: 'A' } })));
        assert.equal(byId(main, 'paused').dataset.by, 'partner');
        assert.equal(byId(main, 'paused-title').textContent, S.pausedByPartnerTitle);
        assert.ok(byId(main, 'paused').textContent.includes(S.pausedByPartnerBody));
        same(byId(main, 'resume-button'), null, 'no carry on during the partner\'s pause');
        assert.equal(byId(main, 'paused-note-button').textContent, S.pausedSendNote);
        click(byId(main, 'paused-note-button'));
        assert.deepEqual(actions.calls.at(-1), ['focusNote']);

        ({ main } = render(makeStore({ flow: { status: 'held' } })));
        assert.equal(part(main, 'action').textContent, S.heldBody);
        assert.equal(part(main, 'action').firstElementChild.className, 'waiting');

        ({ main } = render(makeStore({ lastFlowSeq: 50 })));
        assert.equal(byId(main, 'waiting-sync').textContent, S.waitSync);
        assert.equal(byId(main, 'waiting-sync').className, 'waiting quiet');
    });

    test('a stage vote: go on or stay here, then waiting for the partner', () => {
        /* the partner has chosen already; that is not shown before my own choice */
        let { main, actions } = render(makeStore({ role: 'B', flow: { status: 'voting',
            stage: 1, votes: { A: true } } }));
        same(byId(main, 'vote-waiting'), null, 'my choice is still to make');
        const vote = byId(main, 'vote');
        assert.equal(vote.getAttribute('role'), 'group');
        assert.equal(byId(vote, 'vote-title').textContent, S.voteTitle('Differences'));
        assert.equal(vote.getAttribute('aria-labelledby'), byId(vote, 'vote-title').id);
        assert.ok(vote.textContent.includes(S.voteBody));
        assert.ok(vote.textContent.includes(S.stayHereHelp));
        assert.equal(byId(vote, 'go-on-button').textContent, S.goOn);
        assert.equal(byId(vote, 'stay-here-button').textContent, S.stayHere);
        click(byId(vote, 'go-on-button'));
        click(byId(vote, 'stay-here-button'));
        assert.deepEqual(actions.calls.filter(([n]) => n !== 'noteStep'),
            [['vote', 'go_on'], ['vote', 'stay_here']]);
        /* at the gate there is no question, thread or hint, and nobody's answer is asked */
        assert.equal(byId(main, 'turn').textContent, S.turnVote);
        same(byId(main, 'question-text'), null, 'no question at the gate');
        same(byId(main, 'compose'), null, 'no box at the gate');
        assert.equal(byId(main, 'stage-intro').textContent, 'Side by side.');

        ({ main, actions } = render(makeStore({ role: 'B', flow: { status: 'voting', stage: 1,
            votes: { B: true } } })));
        assert.equal(byId(main, 'vote-waiting').textContent, S.voteWaiting);
        same(byId(main, 'go-on-button'), null, 'a choice is made once');
        same(byId(main, 'stay-here-button'), null, 'a choice is made once');
    });

    test('the action area is rebuilt only when the step changes, and keeps typing', () => {
        const store = makeStore();
        const main = document.createElement('main');
        document.body.replaceChildren(main);
        const actions = makeActions();
        renderTalk(main, store, actions);
        const area = byId(main, 'compose-input');
        area.value = 'half written';
        const other = document.createElement('button');
        document.body.append(other);
        other.focus();
        renderTalk(main, store, actions);
        same(byId(main, 'compose-input'), area, 'same box');
        assert.equal(area.value, 'half written');
        store.sendTrouble = true; /* not part of a compose step's key */
        renderTalk(main, store, actions);
        same(byId(main, 'compose-input'), area, 'the element');

        store.room.flow = makeFlow({ phase: 'reflect', expect: { A: [], B: ['reflect'] } });
        renderTalk(main, store, actions);
        same(byId(main, 'compose-input'), null, 'the element');
        assert.equal(byId(main, 'waiting').textContent, S.waitReflect);
        same(document.activeElement, other, 'focus elsewhere is not taken away');
        store.room.flow = makeFlow({ phase: 'confirm', expect: { A: ['confirm_heard'], B: [] } });
        renderTalk(main, store, actions);
        same(document.activeElement, other, 'not even for my own move');
    });

    test('a sending step follows the connection', () => {
        const store = makeStore({ local: [['x', { type: 'answer', question: 'q1',
            state: 'sending', text: 't' }]] });
        const main = document.createElement('main');
        document.body.replaceChildren(main);
        renderTalk(main, store, makeActions());
        assert.equal(byId(main, 'waiting-sending').textContent, S.waitSending);
        store.online = false;
        renderTalk(main, store, makeActions());
        assert.equal(byId(main, 'waiting-sending').textContent, S.waitSendingOffline);
    });
});

/* ---------------------------------------------------------------- threads */

const answer = (seq, role, text, question = 'q1', type = 'answer') =>
    ({ seq, role, type, question, text });

describe('threads', () => {
    test('entries: who, what, and their classes', () => {
        const { main } = render(makeStore({ flow: { phase: 'confirm' }, entries: [
            answer(2, 'A', 'my answer'), answer(3, 'B', 'what you heard', 'q1', 'reflect'),
            answer(4, 'A', 'my addition', 'q1', 'add'), answer(5, 'B', 'heard again', 'q1',
                'reflect'), { seq: 6, role: 'A', type: 'confirm_heard', question: 'q1' },
            { seq: 7, role: 'B', type: 'pass', question: 'q1' },
            { seq: 8, role: 'B', type: 'answer', question: 'q1', unreadable: true },
            answer(9, 'B', 'another question', 'q2'),
        ] }));
        const thread = byId(part(main, 'thread'), 'thread');
        assert.equal(thread.className, 'thread');
        const entries = allById(thread, 'entry');
        assert.deepEqual(entries.map((e) => e.className), [
            'entry entry--me entry--answer', 'entry entry--partner entry--reflect',
            'entry entry--me entry--add', 'entry entry--partner entry--reflect',
            'entry entry--me entry--confirm_heard entry--line',
            'entry entry--partner entry--pass entry--line',
            'entry entry--partner entry--answer entry--unreadable',
        ]);
        assert.deepEqual(entries.map((e) => e.querySelector('.entry-who')?.textContent ?? null), [
            S.youAnswered, S.partnerHeard, S.youAdded, S.partnerHeard, null, null,
            S.partnerAnswered]);
        assert.deepEqual(entries.map((e) => e.querySelector('.entry-text').textContent), [
            'my answer', 'what you heard', 'my addition', 'heard again', S.youConfirmed,
            S.partnerPassed, S.unreadable]);
        assert.equal(entries[6].querySelector('.entry-text').className,
            'entry-text entry-text--warning');
        assert.deepEqual(entries.map((e) => e.dataset.who),
            ['me', 'partner', 'me', 'partner', 'me', 'partner', 'partner']);
        assert.deepEqual(entries.map((e) => e.dataset.state), Array(7).fill('sent'));
        assert.deepEqual(entries.map((e) => e.dataset.question), Array(7).fill('q1'));
        assert.deepEqual(entries.map((e) => e.dataset.type), ['answer', 'reflect', 'add',
            'reflect', 'confirm_heard', 'pass', 'answer']);
        assert.equal(entries.every((e) => e.querySelector('[data-testid="entry-state"]') === null),
            true, 'stored entries have no state line');
    });

    test('my pass and confirmation, their confirmation, control lines', () => {
        const { main } = render(makeStore({ entries: [
            { seq: 2, role: 'A', type: 'pass', question: 'q1' },
            { seq: 3, role: 'B', type: 'confirm_heard', question: 'q1' },
            { seq: 4, role: 'A', type: 'pause', question: 'q1' },
            { seq: 5, role: 'B', type: 'resume', question: 'q1' },
            { seq: 6, role: 'A', type: 'end', question: 'q1' },
            { seq: 7, role: 'A', type: 'mystery', question: 'q1', text: 'x' },
        ] }));
        const entries = allById(part(main, 'thread'), 'entry');
        assert.deepEqual(entries.map((e) => e.querySelector('.entry-text').textContent),
            [S.youPassed, S.partnerConfirmed, S.youPaused, S.partnerResumed, S.youEnded, 'x']);
        assert.deepEqual(entries.slice(2, 5).map((e) => e.className), [
            'entry entry--me entry--pause entry--line', 'entry entry--partner entry--resume '
            + 'entry--line', 'entry entry--me entry--end entry--line']);
        assert.equal(entries[5].querySelector('.entry-who').textContent, S.youAnswered);
        /* the same lines seen by the other side say who did it the other way round */
        const { main: other } = render(makeStore({ role: 'B', entries: [
            { seq: 4, role: 'A', type: 'pause', question: 'q1' },
            { seq: 5, role: 'B', type: 'resume', question: 'q1' },
            { seq: 6, role: 'A', type: 'end', question: 'q1' },
        ] }));
        assert.deepEqual(allById(part(other, 'thread'), 'entry-text').map((e) => e.textContent),
            [S.partnerPaused, S.youResumed, S.partnerEnded]);
    });

    test('local entries: sending, failed (with the reason), sent', () => {
        const store = makeStore({ role: 'B', flow: { phase: 'reflect', expect: { A: [],
            B: ['reflect'] } }, local: [
            ['1', { type: 'reflect', question: 'q1', text: 'on its way', state: 'sending' }],
            ['2', { type: 'reflect', question: 'q1', text: 'refused', state: 'failed',
                error: 'wrong_step' }],
            ['3', { type: 'reflect', question: 'q1', text: null, state: 'failed',
                error: 'weird' }],
            ['4', { type: 'reflect', question: 'q1', text: 'done', state: 'sent' }],
            ['5', { type: 'reflect', question: 'q2', text: 'elsewhere', state: 'sending' }],
            ['6', { type: 'note', question: null, text: 'a note', state: 'sending' }],
        ] });
        const { main } = render(store);
        const entries = allById(part(main, 'thread'), 'entry');
        assert.equal(entries.length, 4);
        const states = entries.map((e) => byId(e, 'entry-state'));
        assert.deepEqual(states.map((s) => s.textContent), [S.stateSending,
            `${S.stateFailed(S.failedReasons.wrong_step)} ${S.failedRestored}`,
            S.stateFailed(S.failedReasons.other), S.stateSent]);
        assert.deepEqual(states.map((s) => s.className), ['entry-state entry-state--sending',
            'entry-state entry-state--failed', 'entry-state entry-state--failed',
            'entry-state entry-state--sent']);
        assert.deepEqual(entries.map((e) => e.dataset.state), ['sending', 'failed', 'failed',
            'sent']);
        assert.deepEqual(entries.map((e) => e.className.split(' ')[1]), Array(4).fill('entry--me'));
        assert.equal(entries[2].querySelector('.entry-text').textContent, '');

        store.sendTrouble = true;
        const again = render(store).main;
        assert.equal(byId(allById(part(again, 'thread'), 'entry')[0], 'entry-state').textContent,
            S.stateSendingOffline);
        store.sendTrouble = false;
        store.online = false;
        const offline = render(store).main;
        assert.equal(byId(allById(part(offline, 'thread'), 'entry')[0], 'entry-state')
            .textContent, S.stateSendingOffline);
    });

    test('a thread is rebuilt when an entry changes state', () => {
        const store = makeStore({ local: [['1', { type: 'answer', question: 'q1', text: 't',
            state: 'sending' }]] });
        const main = document.createElement('main');
        document.body.replaceChildren(main);
        renderTalk(main, store, makeActions());
        assert.equal(byId(part(main, 'thread'), 'entry-state').textContent, S.stateSending);
        store.local.get('1').state = 'failed';
        store.local.get('1').error = 'paused';
        renderTalk(main, store, makeActions());
        assert.equal(byId(part(main, 'thread'), 'entry-state').textContent,
            `${S.stateFailed(S.failedReasons.paused)} ${S.failedRestored}`);
        store.log.revealed.set('q1', 3);
        store.sendTrouble = true;
        store.local.get('1').state = 'sending';
        renderTalk(main, store, makeActions());
        assert.equal(byId(part(main, 'thread'), 'entry-state').textContent,
            S.stateSendingOffline);
    });
});

describe('reveal-together threads', () => {
    const flow = { question: 'r1', phase: 'reveal_reflect', speaker: null, stage: 1 };

    test('before the reveal my answer says it is private', () => {
        const { main } = render(makeStore({ flow: { ...flow, phase: 'reveal_write' },
            entries: [answer(4, 'A', 'secret', 'r1')] }));
        const entry = byId(part(main, 'thread'), 'entry');
        const note = entry.querySelector('.quiet.small');
        assert.equal(note.textContent, S.privateUntilReveal);
        assert.equal(note.className, 'quiet small');
        same(byId(main, 'reveal'), null, 'the element');
        const theirs = render(makeStore({ flow: { ...flow, phase: 'reveal_write' },
            entries: [{ seq: 4, role: 'B', type: 'pass', question: 'r1' }] })).main;
        same(byId(part(theirs, 'thread'), 'entry').querySelector('.quiet.small'), null,
            'no private note on the partner’s pass');
    });

    test('after both reflected, both read both before the next question', () => {
        const next = { question: 'q3', stage: 2, phase: 'speak', speaker: 'A' };
        const done = [answer(4, 'B', 'theirs', 'r1'), answer(5, 'A', 'mine', 'r1'),
            answer(7, 'B', 'they saw', 'r1', 'reflect'), answer(8, 'A', 'I saw', 'r1', 'reflect')];
        const store = makeStore({ flow: next, revealed: [['r1', 6]], entries: done });
        const { main, actions } = render(store);
        const card = byId(main, 'both-saw');
        assert.equal(card.querySelector('h2').textContent, S.bothSawTitle);
        assert.ok(card.textContent.includes('Where do we differ?'));
        const mine = byId(card, 'both-saw-mine');
        const theirs = byId(card, 'both-saw-partner');
        assert.equal(byId(mine, 'entry-text').textContent, 'I saw');
        assert.equal(mine.querySelector('.entry-who').textContent, S.youSaw);
        assert.equal(byId(theirs, 'entry-text').textContent, 'they saw');
        assert.equal(theirs.querySelector('.entry-who').textContent, S.partnerSaw);
        assert.equal(part(main, 'question').hidden, true, 'the next question waits');
        click(byId(card, 'both-saw-next'));
        assert.deepEqual(actions.calls.filter(([n]) => n !== 'noteStep'), [['revealRead', 'r1']]);

        const read = makeStore({ flow: next, revealed: [['r1', 6]], entries: done,
            ui: { revealRead: new Set(['r1']) } });
        let { main: other } = render(read);
        same(byId(other, 'both-saw'), null, 'once read, not again');
        assert.equal(part(other, 'question').hidden, false);
        ({ main: other } = render(makeStore({ flow: next, revealed: [['r1', 6]],
            entries: done.slice(0, 3) })));
        same(byId(other, 'both-saw'), null, 'not before both reflected');
        ({ main: other } = render(makeStore({ flow: next, revealed: [['r1', 6]],
            entries: [...done, answer(9, 'A', 'already on', 'q3')] })));
        same(byId(other, 'both-saw'), null, 'not once the next question has begun');
        ({ main: other } = render(makeStore({ flow: { ...next, question: 'q2', stage: 0 },
            revealed: [['q1', 6]], entries: done.map((e) => ({ ...e, question: 'q1' })) })));
        same(byId(other, 'both-saw'), null, 'not after a question that is not reveal-together');
    });

    const revealCases = [
        ['both answered differently', ['answer', 'mine'], ['answer', 'theirs'], S.revealDiffer],
        ['both wrote the same', ['answer', ' same '], ['answer', 'same'], S.revealSame],
        ['both passed', ['pass'], ['pass'], S.revealBothPassed],
        ['the partner passed', ['answer', 'mine'], ['pass'], S.revealPartnerPassed],
        ['I passed', ['pass'], ['answer', 'theirs'], S.revealYouPassed],
        ['an unreadable partner answer', ['answer', 'x'], ['answer', null], S.revealDiffer],
    ];
    for (const [name, [myType, myText], [theirType, theirText], note] of revealCases) {
        test(`after the reveal, side by side: ${name}`, () => {
            const { main } = render(makeStore({ flow, revealed: [['r1', 6]], entries: [
                { seq: 4, role: 'B', type: theirType, question: 'r1', text: theirText },
                { seq: 5, role: 'A', type: myType, question: 'r1', text: myText },
                { seq: 7, role: 'B', type: 'reflect', question: 'r1', text: 'I see' },
            ] }));
            const reveal = byId(main, 'reveal');
            assert.equal(reveal.className, 'reveal');
            assert.equal(reveal.querySelector('h3').textContent, S.revealTitle);
            assert.equal(reveal.querySelector('h3').className, 'reveal-title');
            assert.equal(reveal.querySelector('.reveal-grid').children.length, 2);
            const mine = byId(reveal, 'reveal-mine');
            const theirs = byId(reveal, 'reveal-partner');
            assert.equal(mine.className, 'reveal-col');
            assert.equal(theirs.className, 'reveal-col');
            assert.equal(byId(mine, 'entry').dataset.who, 'me');
            assert.equal(byId(mine, 'entry').dataset.type, myType);
            assert.equal(byId(theirs, 'entry').dataset.who, 'partner');
            assert.equal(byId(theirs, 'entry').dataset.type, theirType);
            assert.equal(byId(reveal, 'reveal-note').textContent, note);
            assert.equal(byId(reveal, 'reveal-note').className, 'reveal-note');
            const thread = byId(part(main, 'thread'), 'thread');
            const after = [...thread.children].slice(1);
            assert.equal(after.length, 1, 'what came after the reveal follows it');
            assert.equal(after[0].querySelector('.entry-text').textContent, 'I see');
        });
    }

    test('a reveal with one side missing, and my reply still on its way', () => {
        const { main } = render(makeStore({ flow, revealed: [['r1', 6]], entries: [
            { seq: 5, role: 'A', type: 'reflect', question: 'r1', text: 'not an answer' },
            { seq: 6, role: 'B', type: 'answer', question: 'r1', text: 'late' },
        ], local: [['9', { type: 'reflect', question: 'r1', text: 'mine', state: 'sending' }]] }));
        same(byId(byId(main, 'reveal-mine'), 'entry'), null, 'the element');
        assert.equal(byId(byId(main, 'reveal-partner'), 'entry').textContent.includes('late'),
            true);
        assert.equal(byId(main, 'reveal-note').textContent, S.revealDiffer);
        const thread = byId(part(main, 'thread'), 'thread');
        assert.equal(thread.children.length, 2);
        assert.equal(byId(thread.children[1], 'entry-state').textContent, S.stateSending);
    });
});

/* ---------------------------------------------------------------- notes */

describe('notes', () => {
    test('the note form sends trimmed text, the quick notes theirs, nothing when empty', () => {
        const { main, actions } = render(makeStore());
        const notes = part(main, 'notes');
        assert.equal(notes.querySelector('h2').textContent, S.noteTitle);
        assert.equal(notes.querySelector('h2').id, 'notes-title');
        const input = byId(notes, 'note-input');
        assert.equal(input.getAttribute('maxlength'), '500');
        assert.equal(input.getAttribute('type'), 'text');
        assert.equal(input.getAttribute('autocomplete'), 'off');
        const help = notes.querySelector('.help');
        assert.equal(help.textContent, S.noteHelp);
        assert.equal(input.getAttribute('aria-describedby'), help.id);
        const label = notes.querySelector('label');
        assert.equal(label.textContent, S.noteLabel);
        assert.equal(label.getAttribute('for'), input.id);
        assert.equal(label.className, 'visually-hidden');
        assert.equal(byId(notes, 'note-send').textContent, S.noteSend);
        assert.equal(byId(notes, 'note-form').className, 'note-form');

        input.value = '  hello there ';
        submit(byId(notes, 'note-form'));
        assert.equal(input.value, '');
        input.value = '   ';
        submit(byId(notes, 'note-form'));
        const quick = [...notes.querySelectorAll('.quick-notes button')];
        assert.deepEqual(texts(quick), S.noteQuick);
        assert.equal(quick[0].className, 'button button--chip');
        click(quick[1]);
        assert.deepEqual(actions.calls.filter(([n]) => n === 'note'),
            [['note', 'hello there'], ['note', S.noteQuick[1]]]);
    });

    test('the form is built once; the list follows the notes', () => {
        const store = makeStore({ entries: [{ seq: 3, role: 'B', type: 'note', question: null,
            text: 'from B' }] });
        const main = document.createElement('main');
        document.body.replaceChildren(main);
        renderTalk(main, store, makeActions());
        const input = byId(main, 'note-input');
        input.value = 'typing';
        let list = byId(main, 'notes');
        assert.equal(list.getAttribute('aria-label'), S.notesLabel);
        assert.equal(list.className, 'notes-list');
        assert.deepEqual(texts([...list.querySelectorAll('.entry-text')]), ['from B']);
        assert.equal(list.querySelector('.entry-who').textContent, S.partnerNote);

        store.local.set('n1', { type: 'note', question: null, text: 'from me', state: 'sending' });
        renderTalk(main, store, makeActions());
        same(byId(main, 'note-input'), input, 'the note form stays');
        assert.equal(input.value, 'typing');
        list = byId(main, 'notes');
        assert.deepEqual(texts([...list.querySelectorAll('.entry-text')]), ['from B', 'from me']);
        assert.equal(list.querySelectorAll('.entry-who')[1].textContent, S.youNote);
        assert.equal(byId(list, 'entry-state').textContent, S.stateSending);
        store.sendTrouble = true;
        renderTalk(main, store, makeActions());
        assert.equal(byId(byId(main, 'notes'), 'entry-state').textContent, S.stateSendingOffline);
        store.local.get('n1').state = 'failed';
        renderTalk(main, store, makeActions());
        assert.equal(byId(byId(main, 'notes'), 'entry-state').className,
            'entry-state entry-state--failed');
    });

    test('no notes, no list', () => {
        const { main } = render(makeStore());
        same(byId(main, 'notes'), null, 'the element');
        assert.equal(part(main, 'notes-list').children.length, 0);
    });
});

/* ---------------------------------------------------------------- history, controls */

describe('history and controls', () => {
    test('earlier questions, closed, with their threads', () => {
        const store = makeStore({ flow: { question: 'q2' }, entries: [
            answer(2, 'A', 'first', 'q1'), answer(3, 'B', 'heard', 'q1', 'reflect'),
            answer(4, 'B', 'now', 'q2'), answer(5, 'A', 'unknown q', 'zz'),
        ] });
        const main = document.createElement('main');
        document.body.replaceChildren(main);
        renderTalk(main, store, makeActions());
        const history = part(main, 'history');
        assert.equal(history.querySelector('h2').textContent, S.historyTitle);
        const items = allById(history, 'history-item');
        assert.deepEqual(items.map((d) => d.dataset.question), ['q1', 'zz']);
        assert.deepEqual(items.map((d) => d.querySelector('summary').textContent),
            ['What made you smile?', 'zz']);
        assert.deepEqual(items.map((d) => d.hasAttribute('open')), [false, false]);
        assert.equal(items[0].className, 'history-item');
        assert.equal(byId(history, 'history').className, 'history-list');
        assert.deepEqual(texts([...items[0].querySelectorAll('.entry-text')]), ['first', 'heard']);

        const details = items[0];
        renderTalk(main, store, makeActions());
        same(allById(part(main, 'history'), 'history-item')[0], details, 'not rebuilt');
        addEntry(store.log, answer(6, 'A', 'more', 'q1', 'add'));
        renderTalk(main, store, makeActions());
        assert.ok(allById(part(main, 'history'), 'history-item')[0] !== details, 'rebuilt');
        assert.equal(allById(part(main, 'history'), 'entry').length, 4);
    });

    test('no earlier questions, no history', () => {
        const { main } = render(makeStore({ entries: [answer(2, 'A', 'x')] }));
        assert.equal(part(main, 'history').children.length, 0);
    });

    test('pause, end and erase ask first; while paused there is no pause button', () => {
        const store = makeStore();
        const main = document.createElement('main');
        document.body.replaceChildren(main);
        const actions = makeActions();
        renderTalk(main, store, actions);
        const controls = part(main, 'controls');
        assert.deepEqual(texts([...controls.querySelectorAll('button')]), [S.pause, S.end]);
        assert.deepEqual([...controls.querySelectorAll('button')].map((b) => b.className), [
            'button button--secondary', 'button button--secondary']);
        /* erasing sits apart from End, in its own section that says it erases for both */
        const erase = part(main, 'erase');
        assert.equal(erase.querySelector('h2').textContent, S.eraseTitle);
        assert.ok(erase.textContent.includes(S.eraseExplain));
        assert.deepEqual(texts([...erase.querySelectorAll('button')]), [S.erase]);
        assert.equal(byId(erase, 'erase-button').className, 'button button--quiet');
        click(byId(controls, 'pause-button'));
        click(byId(controls, 'end-button'));
        click(byId(erase, 'erase-button'));
        assert.deepEqual(actions.calls.filter(([n]) => n !== 'noteStep'),
            [['pause'], ['askConfirm', 'end'], ['askConfirm', 'erase']]);

        store.room.flow.status = 'paused';
        renderTalk(main, store, actions);
        same(byId(controls, 'pause-button'), null, 'the element');
        assert.ok(byId(controls, 'end-button'));

        store.ui.confirming = 'end';
        renderTalk(main, store, actions);
        const endPanel = byId(controls, 'end-confirm');
        assert.equal(endPanel.getAttribute('aria-label'), S.endConfirmQ);
        assert.equal(byId(endPanel, 'end-confirm-yes').textContent, S.endConfirm);
        click(byId(endPanel, 'end-confirm-yes'));
        click(byId(endPanel, 'end-confirm-no'));
        assert.deepEqual(actions.calls.filter(([n]) => n !== 'noteStep').slice(-2),
            [['end'], ['askConfirm', null]]);

        store.ui.confirming = 'erase';
        store.ui.busy = true;
        renderTalk(main, store, actions);
        same(byId(controls, 'erase-confirm'), null, 'the erase panel is not among the controls');
        assert.ok(byId(controls, 'end-button'), 'the controls stay while erasing is asked');
        const erasePanel = byId(erase, 'erase-confirm');
        assert.equal(erasePanel.getAttribute('aria-label'), S.eraseConfirmBoth);
        assert.equal(byId(erasePanel, 'erase-confirm-yes').textContent, S.erasing);
        assert.equal(byId(erasePanel, 'erase-confirm-yes').disabled, true);
        assert.equal(byId(erasePanel, 'erase-sure').disabled, true);
        assert.equal(byId(erasePanel, 'erase-confirm-no').disabled, true);
        store.ui.busy = false;
        renderTalk(main, store, actions);
        const yes = byId(byId(erase, 'erase-confirm'), 'erase-confirm-yes');
        assert.equal(yes.textContent, S.eraseConfirm);
        /* a deliberate second step: the button works only once the box is ticked */
        assert.equal(yes.disabled, true);
        const box = byId(erase, 'erase-sure');
        assert.equal(box.getAttribute('type'), 'checkbox');
        const label = erase.querySelector(`label[for="${box.id}"]`);
        assert.equal(label.textContent, S.eraseSure);
        const tick = (checked) => {
            box.checked = checked;
            box.dispatchEvent(new dom.Event('change'));
        };
        tick(true);
        assert.equal(yes.disabled, false);
        tick(false);
        assert.equal(yes.disabled, true);
        tick(true);
        click(yes);
        click(byId(erase, 'erase-confirm-no'));
        assert.deepEqual(actions.calls.filter(([n]) => n !== 'noteStep').slice(-2),
            [['erase'], ['askConfirm', null]]);
    });
});

/* ---------------------------------------------------------------- ended */

describe('the ended screen', () => {
    function ended(store) {
        const main = document.createElement('main');
        document.body.replaceChildren(main);
        const actions = makeActions();
        renderEnded(main, store, actions);
        return { main, actions };
    }

    test('finished: thanks, the whole transcript open, the notes, start anew or erase', () => {
        const store = makeStore({ flow: { status: 'ended', finished: true }, entries: [
            answer(2, 'A', 'first', 'q1'), answer(3, 'B', 'second', 'q2'),
            { seq: 4, role: 'B', type: 'note', question: null, text: 'bye' },
        ] });
        const { main, actions } = ended(store);
        const head = byId(main, 'ended');
        assert.equal(head.className, 'card ended');
        assert.equal(byId(head, 'ended-title').textContent, S.endedTitle);
        assert.deepEqual(texts([...head.querySelectorAll('p')]), [S.endedFinished, S.endedKeep]);
        assert.equal(head.querySelectorAll('p')[1].className, 'quiet');
        const history = part(main, 'history');
        assert.equal(history.className, 'history history--open');
        assert.equal(history.querySelector('h2').textContent, S.endedTranscript);
        assert.deepEqual(allById(history, 'history-item').map((d) => d.hasAttribute('open')),
            [true, true]);
        const notes = part(main, 'ended-notes');
        assert.equal(notes.className, 'notes');
        assert.equal(notes.querySelector('.card h2').textContent, S.notesLabel);
        assert.deepEqual(texts([...byId(notes, 'notes').querySelectorAll('.entry-text')]),
            ['bye']);
        const controls = part(main, 'controls');
        assert.equal(controls.getAttribute('aria-label'), S.controlsLabel);
        const link = controls.querySelector('a');
        assert.equal(link.getAttribute('href'), '/');
        assert.equal(link.textContent, S.startNew);
        assert.equal(link.className, 'button');
        /* something to keep: saved or printed, made in this browser */
        assert.ok(controls.textContent.includes(S.keepExplain));
        assert.deepEqual(texts([byId(controls, 'save-button'), byId(controls, 'print-button')]),
            [S.keepSave, S.keepPrint]);
        same(byId(controls, 'erase-button'), null, 'erasing is not among the controls');
        click(byId(part(main, 'erase'), 'erase-button'));
        assert.deepEqual(actions.calls, [['askConfirm', 'erase']]);
    });

    test('stopped early, without notes; erasing asks first; built once', () => {
        const store = makeStore({ flow: { status: 'ended', finished: false } });
        const { main, actions } = ended(store);
        assert.deepEqual(texts([...byId(main, 'ended').querySelectorAll('p')]),
            [S.endedStopped, S.endedKeep]);
        assert.equal(part(main, 'ended-notes').children.length, 0);
        assert.equal(part(main, 'history').children.length, 0);
        const head = byId(main, 'ended');

        const link = part(main, 'controls').querySelector('a');

        store.ui.confirming = 'erase';
        renderEnded(main, store, actions);
        assert.equal(byId(main, 'ended'), head, 'the screen is built once');
        const panel = byId(part(main, 'erase'), 'erase-confirm');
        assert.equal(byId(panel, 'erase-confirm-yes').disabled, true);
        const box = byId(panel, 'erase-sure');
        box.checked = true;
        box.dispatchEvent(new dom.Event('change'));
        click(byId(panel, 'erase-confirm-yes'));
        assert.deepEqual(actions.calls, [['erase']]);
        /* erasing is asked apart: the controls, with the way to start anew, stay as built */
        same(part(main, 'controls').querySelector('a'), link, 'the start link');

        store.room.flow = null;
        store.ui.confirming = null;
        renderEnded(main, store, actions);
        assert.deepEqual(texts([...byId(main, 'ended').querySelectorAll('p')]),
            [S.endedStopped, S.endedKeep]);
        store.room.flow = makeFlow({ status: 'ended', finished: true });
        renderEnded(main, store, actions);
        assert.equal(byId(main, 'ended').querySelector('p').textContent, S.endedFinished);
        assert.equal(byId(main, 'ended-title').textContent, S.endedTitle);
        /* one of them chose to stay here at a stage vote: it ended at a good depth */
        store.room.flow = makeFlow({ status: 'ended', finished: false, stayed: true });
        renderEnded(main, store, actions);
        assert.equal(byId(main, 'ended-title').textContent, S.endedStayedTitle);
        assert.deepEqual(texts([...byId(main, 'ended').querySelectorAll('p')]),
            [S.endedStayed, S.endedKeep]);
    });
});
