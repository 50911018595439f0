// The guided conversation, drawn from the store: progress through the stages, the stage's
// introduction, the current question with its thread and what this person may do now
// (from `flow.expect`), notes, earlier questions, and the controls. Also the ended screen.
// Reads the store, never changes it; every input goes to `actions`.

import { h, keyed, focus, uid } from './dom.js';
import { S } from './strings.js';
import { FLOW_TYPES, thread, questionsSeen, notes } from './log.js';
import { confirmPanel } from './widgets.js';
import { differView, keepButtons } from './keepsake.js';
import { renderMove } from './move-view.js';

const NOTE_MAX = 500;
const TEXT_MAX = 3000;

/* ---------------------------------------------------------------- what to do now */

/**
 * The step this person is at: {kind, type?, question, phase, ...}. kind is 'compose' (write
 * an answer/reflection/addition of `type`), 'confirm' (say whether they were heard), 'wait'
 * (the partner's move, `text` says what they do), 'sending' (our move is on its way), 'sync'
 * (events arrived that the room state does not reflect yet), 'paused' or 'held'.
 */
export function stepOf(store) {
    const flow = store.room.flow;
    const role = store.record.role;
    const base = { question: flow.question, phase: flow.phase, speaker: flow.speaker,
        rounds: flow.rounds };
    if (flow.status === 'paused') {
        return { ...base, kind: 'paused', by: pausedBy(store) };
    }
    if (flow.status === 'held') {
        return { ...base, kind: 'held' };
    }
    if (flow.status === 'voting' && !sendingFlow(store)) {
        return { ...base, kind: 'vote', voted: flow.votes?.[role] === true };
    }
    if (sendingFlow(store)) {
        return { ...base, kind: 'sending' };
    }
    if (store.log.lastFlowSeq > store.room.last_seq) {
        return { ...base, kind: 'sync' };
    }
    const expect = flow.expect?.[role] ?? [];
    const can = (type) => expect.includes(type);
    switch (flow.phase) {
    case 'speak':
        return can('answer') ? { ...base, kind: 'compose', type: 'answer' }
            : { ...base, kind: 'wait', text: S.waitSpeak };
    case 'reflect':
        return can('reflect') ? { ...base, kind: 'compose', type: 'reflect' }
            : { ...base, kind: 'wait', text: S.waitReflect };
    case 'confirm':
        if (!can('confirm_heard')) {
            return { ...base, kind: 'wait', text: S.waitConfirm };
        }
        return store.ui.adding ? { ...base, kind: 'compose', type: 'add' }
            : { ...base, kind: 'confirm' };
    case 'reveal_write':
        return can('answer') ? { ...base, kind: 'compose', type: 'answer', reveal: true }
            : { ...base, kind: 'wait', text: S.waitRevealWrite };
    case 'reveal_reflect':
        return can('reflect') ? { ...base, kind: 'compose', type: 'reflect', reveal: true }
            : { ...base, kind: 'wait', text: S.waitRevealReflect };
    default:
        return { ...base, kind: 'sync' };
    }
}

function sendingFlow(store) {
    return [...store.local.values()].some((l) => l.state !== 'failed' && FLOW_TYPES.has(l.type));
}

/** Whose pause it is: 'me', 'partner', or 'either' (a pause stored before pauses had an
 *  owner, which either may lift). */
function pausedBy(store) {
    const by = store.room.flow.paused_by;
    if (!by) {
        return 'either';
    }
    if (by === 'F') {
        return 'facilitator'; /* a workshop's facilitator paused everyone: theirs to lift */
    }
    return by === store.record.role ? 'me' : 'partner';
}

function stepKey(step, store) {
    return [step.question, step.phase, step.speaker, step.rounds, step.kind, step.type ?? '',
        step.by ?? '', step.voted ?? '',
        step.kind === 'sending' ? store.sendTrouble || !store.online : ''].join('|');
}

/* ---------------------------------------------------------------- entries */

const LABELS = {
    answer: [S.youAnswered, S.partnerAnswered],
    reflect: [S.youHeard, S.partnerHeard],
    add: [S.youAdded, S.partnerAdded],
    note: [S.youNote, S.partnerNote],
};

function stateLine(entry, store) {
    if (entry.state === 'sending') {
        return h('p', { class: 'entry-state entry-state--sending', testid: 'entry-state',
            text: store.sendTrouble || !store.online ? S.stateSendingOffline : S.stateSending });
    }
    if (entry.state === 'failed') {
        const why = S.failedReasons[entry.error] ?? S.failedReasons.other;
        return h('p', { class: 'entry-state entry-state--failed', testid: 'entry-state',
            text: `${S.stateFailed(why)} ${entry.text ? S.failedRestored : ''}`.trim() });
    }
    if (entry.local && entry.state === 'sent') {
        return h('p', { class: 'entry-state entry-state--sent', testid: 'entry-state',
            text: S.stateSent });
    }
    return null;
}

/** One entry of a thread (or a note). */
function entryView(entry, store, extra = null) {
    const mine = entry.role === store.record.role;
    const who = mine ? 'me' : 'partner';
    const attrs = {
        class: `entry entry--${who} entry--${entry.type}${entry.unreadable ? ' entry--unreadable' : ''}`,
        testid: 'entry',
        dataset: { type: entry.type, who, state: entry.state ?? 'sent',
            question: entry.question ?? '' },
    };
    if (entry.type === 'pass' || entry.type === 'confirm_heard') {
        const text = entry.type === 'pass' ? (mine ? S.youPassed : S.partnerPassed)
            : (mine ? S.youConfirmed : S.partnerConfirmed);
        return h('div', { ...attrs, class: `${attrs.class} entry--line` },
            h('p', { class: 'entry-text', testid: 'entry-text', text }),
            stateLine(entry, store));
    }
    if (['pause', 'resume', 'end'].includes(entry.type)) {
        const lines = mine ? { pause: S.youPaused, resume: S.youResumed, end: S.youEnded }
            : { pause: S.partnerPaused, resume: S.partnerResumed, end: S.partnerEnded };
        return h('div', { ...attrs, class: `${attrs.class} entry--line` },
            h('p', { class: 'entry-text', testid: 'entry-text', text: lines[entry.type] }),
            stateLine(entry, store));
    }
    /* On a reveal-together question a reflection is what one sees in the other's answer,
     * not what one heard. */
    const revealed = entry.type === 'reflect' && store.questions.get(entry.question)?.reveal;
    const [mineLabel, theirLabel] = revealed ? [S.youSaw, S.partnerSaw]
        : (LABELS[entry.type] ?? LABELS.answer);
    return h('div', attrs,
        h('p', { class: 'entry-who', text: mine ? mineLabel : theirLabel }),
        entry.unreadable
            ? h('p', { class: 'entry-text entry-text--warning', text: S.unreadable })
            : h('p', { class: 'entry-text', testid: 'entry-text', text: entry.text ?? '' }),
        extra,
        stateLine(entry, store));
}

/** Local (not yet stored) entries of a question, shown after the stored ones. */
function localEntries(store, question) {
    const out = [];
    for (const [id, local] of store.local) {
        if ((local.question ?? null) === (question ?? null) && local.type !== 'note') {
            out.push({ ...local, key: `local-${id}`, role: store.record.role, local: true });
        }
    }
    return out;
}

function threadEntries(store, question) {
    return [...thread(store.log, question), ...localEntries(store, question)];
}

function threadSignature(entries, store) {
    return entries.map((e) => `${e.key}:${e.state ?? ''}:${e.error ?? ''}`).join(',')
        + `|${store.log.revealed.get(entries[0]?.question) ?? ''}|${store.sendTrouble}|${store.online}`;
}

/** A question's thread; reveal-together questions show both answers side by side once
 *  revealed. */
function threadView(store, question, entries) {
    const info = store.questions.get(question);
    const revealSeq = store.log.revealed.get(question);
    if (!info?.reveal) {
        return h('div', { class: 'thread', testid: 'thread' },
            entries.map((e) => entryView(e, store)));
    }
    const me = store.record.role;
    if (revealSeq === undefined) {
        return h('div', { class: 'thread', testid: 'thread' },
            entries.map((e) => entryView(e, store, e.role === me && e.type === 'answer'
                ? h('p', { class: 'quiet small', text: S.privateUntilReveal }) : null)));
    }
    const before = entries.filter((e) => !e.local && e.seq <= revealSeq);
    const after = entries.filter((e) => e.local || e.seq > revealSeq);
    const pick = (mine) => before.find((e) => (e.role === me) === mine
        && (e.type === 'answer' || e.type === 'pass'));
    const myPart = pick(true);
    const theirPart = pick(false);
    let note = S.revealDiffer;
    if (myPart?.type === 'pass' && theirPart?.type === 'pass') {
        note = S.revealBothPassed;
    } else if (theirPart?.type === 'pass') {
        note = S.revealPartnerPassed;
    } else if (myPart?.type === 'pass') {
        note = S.revealYouPassed;
    } else if (myPart?.text && theirPart?.text && myPart.text.trim() === theirPart.text.trim()) {
        note = S.revealSame;
    }
    const column = (part, mine) => h('div', { class: 'reveal-col',
        testid: mine ? 'reveal-mine' : 'reveal-partner' },
        part ? entryView(part, store) : null);
    return h('div', { class: 'thread', testid: 'thread' },
        h('div', { class: 'reveal', testid: 'reveal' },
            h('h3', { class: 'reveal-title', text: S.revealTitle }),
            h('div', { class: 'reveal-grid' }, column(myPart, true), column(theirPart, false)),
            h('p', { class: 'reveal-note', testid: 'reveal-note', text: note })),
        after.map((e) => entryView(e, store)));
}

/* ---------------------------------------------------------------- the talk screen */

function skeleton(main) {
    if (main.dataset.talk) {
        return;
    }
    main.dataset.talk = '1';
    main.replaceChildren(
        h('nav', { class: 'progress', 'aria-label': S.progressLabel, 'data-part': 'progress',
            testid: 'progress' }),
        h('section', { class: 'stage', 'data-part': 'stage' }),
        h('section', { class: 'reveal-read', 'data-part': 'reveal-read' }),
        h('section', { class: 'card question', testid: 'question', 'data-part': 'question',
            'aria-labelledby': 'question-text' },
        h('div', { 'data-part': 'question-head' }),
        h('div', { 'data-part': 'thread' }),
        h('div', { 'data-part': 'hint' }),
        h('div', { 'data-part': 'action', class: 'action' })),
        h('section', { class: 'card notes', 'data-part': 'notes', 'aria-labelledby': 'notes-title' }),
        h('section', { class: 'history', 'data-part': 'history' }),
        h('section', { class: 'controls', 'data-part': 'controls',
            'aria-label': S.controlsLabel }),
        h('section', { class: 'move', 'data-part': 'move', testid: 'move-section' }),
        h('section', { class: 'erase', 'data-part': 'erase', testid: 'erase-section' }));
}

export function renderTalk(main, store, actions) {
    skeleton(main);
    const part = (name) => main.querySelector(`[data-part=${name}]`);
    const flow = store.room.flow;
    const step = stepOf(store);
    const info = store.questions.get(flow.question) ?? null;
    const stageIndex = flow.stage;
    const stage = store.set.stages[stageIndex];

    renderProgress(part('progress'), store);
    /* The introduction is what a stage gate is about, so it is open there; during the
     * stage it folds away under "About this stage" and the question comes first. */
    /* A held stage (a workshop's next stage, not opened yet) reads like a gate: what comes,
     * not its first question. */
    const held = flow.status === 'held';
    const gate = flow.status === 'voting' || held;
    keyed(part('stage'), `stage-${stageIndex}|${gate}`, () => [
        gate ? h('p', { class: 'stage-count',
            text: S.stageLabel(stageIndex, store.set.stages.length) }) : null,
        h('h1', { class: 'stage-title', testid: 'stage-title', text: stage?.title ?? '' }),
        gate ? h('p', { class: 'stage-intro', testid: 'stage-intro', text: stage?.intro ?? '' })
            : h('details', { class: 'stage-about', testid: 'stage-about' },
                h('summary', { text: S.stageAbout }),
                h('p', { class: 'stage-intro', testid: 'stage-intro', text: stage?.intro ?? '' })),
    ]);

    const voting = flow.status === 'voting' || held;
    keyed(part('question-head'), `${flow.question}|${turnKey(store)}`, () => (voting ? [
        h('p', { class: 'turn turn--both', testid: 'turn' },
            h('span', { class: 'turn-who', text: held ? S.wsHeldTurn : S.turnVote })),
    ] : [
        turnLine(store),
        h('h2', { id: 'question-text', class: 'question-text', testid: 'question-text',
            text: info?.text ?? '' }),
        info?.reveal ? h('p', { class: 'quiet', text: S.revealExplain }) : null,
    ]));

    const entries = threadEntries(store, flow.question);
    keyed(part('thread'), `${flow.question}|${voting}|${threadSignature(entries, store)}`,
        () => (voting ? [] : threadView(store, flow.question, entries)));

    const showHint = !voting && info?.hint && isListening(store);
    keyed(part('hint'), showHint ? `hint-${flow.question}` : 'none', () => (showHint
        ? h('aside', { class: 'hint', testid: 'hint' },
            h('p', { class: 'hint-label', text: info.reveal ? S.hintLabelReveal : S.hintLabel }),
            h('p', { text: info.hint }))
        : []));

    /* After a reveal-together question, both read both reflections before the next
     * question is shown: whoever reflected first would otherwise never see the other's. */
    const toRead = revealToRead(store);
    part('question').hidden = toRead !== null;
    keyed(part('reveal-read'), `read|${toRead ?? ''}`,
        () => (toRead ? revealReadView(store, actions, toRead) : []));

    renderAction(part('action'), store, actions, step);
    renderNotes(part('notes'), store, actions);
    renderHistory(part('history'), store, flow.question, false);
    renderControls(part('controls'), store, actions);
    renderMove(part('move'), store, actions);
    renderErase(part('erase'), store, actions);
    const mine = step.kind === 'compose' || step.kind === 'confirm'
        || (step.kind === 'vote' && !step.voted);
    document.title = mine ? S.titleYourTurn : S.titleRoom;
    actions.noteStep(`${flow.question}|${flow.phase}|${flow.speaker}|${flow.rounds}|${flow.status}`,
        mine);
}

/** The reveal-together question just completed whose reflections this person has not read
 *  yet on the page, or null. */
function revealToRead(store) {
    const order = store.set.stages.flatMap((st) => st.questions.map((q) => q.id));
    const at = order.indexOf(store.room.flow.question);
    const previous = at > 0 ? order[at - 1] : null;
    if (!previous || !store.questions.get(previous)?.reveal
        || store.ui.revealRead?.has(previous)) {
        return null;
    }
    const revealSeq = store.log.revealed.get(previous);
    if (revealSeq === undefined) {
        return null;
    }
    const after = thread(store.log, previous).filter((e) => e.seq > revealSeq
        && (e.type === 'reflect' || e.type === 'pass'));
    const roles = new Set(after.map((e) => e.role));
    /* only while it is fresh: nothing of the next question has happened yet */
    const next = thread(store.log, store.room.flow.question);
    return roles.has('A') && roles.has('B') && next.length === 0 ? previous : null;
}

function revealReadView(store, actions, question) {
    const me = store.record.role;
    const revealSeq = store.log.revealed.get(question);
    const after = thread(store.log, question).filter((e) => e.seq > revealSeq
        && (e.type === 'reflect' || e.type === 'pass'));
    const part = (mine) => after.find((e) => (e.role === me) === mine);
    const column = (entry, mine) => h('div', { class: 'reveal-col',
        testid: mine ? 'both-saw-mine' : 'both-saw-partner' },
    entry ? entryView(entry, store) : null);
    return h('div', { class: 'card reveal-read-card', testid: 'both-saw' },
        h('h2', { text: S.bothSawTitle }),
        h('p', { class: 'quiet', text: store.questions.get(question)?.text ?? '' }),
        h('div', { class: 'reveal-grid' }, column(part(true), true), column(part(false), false)),
        h('p', { class: 'reveal-note', text: S.bothSawNote }),
        h('div', { class: 'buttons' },
            h('button', { type: 'button', class: 'button', testid: 'both-saw-next',
                text: S.bothSawNext, onclick: () => actions.revealRead(question) })));
}

/** Whose move is it: 'me', 'partner' or 'both'. */
function actor(store) {
    const flow = store.room.flow;
    const role = store.record.role;
    if (flow.phase === 'reveal_write' || flow.phase === 'reveal_reflect') {
        return 'both';
    }
    const speakerActs = flow.phase === 'speak' || flow.phase === 'confirm';
    const actorRole = speakerActs ? flow.speaker : (flow.speaker === 'A' ? 'B' : 'A');
    return actorRole === role ? 'me' : 'partner';
}

function turnKey(store) {
    const flow = store.room.flow;
    return `${actor(store)}|${flow.speaker}|${flow.phase}|${flow.status}|${flow.paused_by ?? ''}`;
}

function turnLine(store) {
    const flow = store.room.flow;
    if (flow.status === 'paused') {
        /* While paused it is nobody's turn; the pause card below says whose pause it is. */
        return h('p', { class: 'turn turn--paused', testid: 'turn' },
            h('span', { class: 'turn-who', text: S.turnPaused }));
    }
    const who = actor(store);
    const turn = { me: S.turnYou, partner: S.turnPartner, both: S.turnBoth }[who];
    /* Said for this step: during "is that what you meant?" the line is about that, not
     * about who answered. */
    const roleText = S.turnWhat[flow.phase]?.[who] ?? null;
    return h('p', { class: `turn turn--${who}`, testid: 'turn' },
        h('span', { class: 'turn-who', text: turn }),
        roleText ? h('span', { class: 'turn-role', text: ` · ${roleText}` }) : null);
}

/** Is this person the listener right now (the one the hint is for)? */
function isListening(store) {
    const flow = store.room.flow;
    if (flow.phase === 'reveal_reflect') {
        return true;
    }
    return (flow.phase === 'speak' || flow.phase === 'reflect')
        && flow.speaker !== store.record.role;
}

function renderProgress(el, store) {
    const flow = store.room.flow;
    const { index, total } = flow.progress;
    keyed(el, `${index}/${total}|${flow.stage}|${flow.status}`, () => [
        h('div', { class: 'progress-head' },
            h('span', { class: 'progress-text', testid: 'progress-text',
                text: S.progressText(index, total) }),
            h('progress', { class: 'progress-bar', max: String(total), value: String(index),
                'aria-label': S.progressText(index, total) }),
            /* Folded, so that on a phone the question and the box to write in come first. */
            h('details', { class: 'stages-fold', testid: 'stages-fold' },
                h('summary', { text: S.stageLabel(flow.stage, store.set.stages.length) }),
                h('ol', { class: 'stages', 'aria-label': S.stagesLabel },
                    store.set.stages.map((stage, i) => h('li', {
                        class: i < flow.stage ? 'stage-done'
                            : (i === flow.stage ? 'stage-current' : ''),
                        'aria-current': i === flow.stage ? 'step' : null,
                        text: stage.title,
                    }))))),
    ]);
}

/* ---------------------------------------------------------------- the action area */

function renderAction(el, store, actions, step) {
    const key = stepKey(step, store);
    const hadFocus = el.contains(document.activeElement) || document.activeElement === document.body;
    const rebuilt = keyed(el, key, () => actionView(store, actions, step, key));
    if (rebuilt && hadFocus && (step.kind === 'compose' || step.kind === 'confirm')) {
        /* keyboard users land where they can act; nobody reading is scrolled away */
        focus(el.querySelector('textarea') ?? el.querySelector('button'), { preventScroll: true });
    }
}

function actionView(store, actions, step, key) {
    switch (step.kind) {
    case 'compose':
        return composeForm(store, actions, step, key);
    case 'confirm':
        return h('div', { class: 'confirm-heard', testid: 'confirm-step' },
            h('p', { class: 'prompt', text: S.confirmPrompt }),
            h('div', { class: 'buttons' },
                h('button', { type: 'button', class: 'button', testid: 'confirm-heard-button',
                    text: S.confirmHeard, onclick: () => actions.confirmHeard() }),
                h('button', { type: 'button', class: 'button button--secondary',
                    testid: 'not-quite-button', text: S.notQuite,
                    onclick: () => actions.startAdding(true) }),
                /* "Pass" would not answer "is that what you meant?": here it leaves it there */
                passButton(actions, S.passConfirm)),
            h('p', { class: 'quiet small', text: S.passConfirmHelp }));
    case 'wait':
        return h('p', { class: 'waiting', testid: 'waiting', text: step.text });
    case 'sending':
        return h('p', { class: 'waiting', testid: 'waiting-sending',
            text: store.sendTrouble || !store.online ? S.waitSendingOffline : S.waitSending });
    case 'paused':
        if (step.by === 'facilitator') {
            return h('div', { class: 'paused', testid: 'paused', dataset: { by: 'facilitator' } },
                h('h3', { testid: 'paused-title', text: S.wsPausedTitle }),
                h('p', { text: S.wsPausedBody }));
        }
        if (step.by === 'partner') {
            /* Their pause is theirs to lift: no "carry on" here, a note is what helps. */
            return h('div', { class: 'paused', testid: 'paused', dataset: { by: 'partner' } },
                h('h3', { testid: 'paused-title', text: S.pausedByPartnerTitle }),
                h('p', { text: S.pausedByPartnerBody }),
                h('button', { type: 'button', class: 'button button--secondary',
                    testid: 'paused-note-button', text: S.pausedSendNote,
                    onclick: () => actions.focusNote() }));
        }
        return h('div', { class: 'paused', testid: 'paused', dataset: { by: step.by } },
            h('h3', { testid: 'paused-title',
                text: step.by === 'me' ? S.pausedByYouTitle : S.pausedTitle }),
            h('p', { text: step.by === 'me' ? S.pausedByYouBody : S.pausedBody }),
            h('button', { type: 'button', class: 'button', testid: 'resume-button',
                text: S.resume, onclick: () => actions.resume() }));
    case 'held':
        return h('p', { class: 'waiting', testid: 'held',
            text: store.workshop ? S.wsHeldBody : S.heldBody });
    case 'vote':
        return voteView(store, actions, step);
    default:
        return h('p', { class: 'waiting quiet', testid: 'waiting-sync', text: S.waitSync });
    }
}

/*
 * Before a new stage: what it is about is shown above (its title and introduction); each
 * chooses to go on or to stay here. The partner's choice is not shown until one's own is
 * made, so nobody chooses under its weight.
 */
function voteView(store, actions, step) {
    if (step.voted) {
        return h('div', { class: 'vote', testid: 'vote' },
            h('p', { class: 'waiting', testid: 'vote-waiting', text: S.voteWaiting }));
    }
    const stage = store.set.stages[store.room.flow.stage];
    return h('div', { class: 'vote', testid: 'vote', role: 'group',
        'aria-labelledby': 'vote-title' },
    h('h3', { id: 'vote-title', testid: 'vote-title', text: S.voteTitle(stage?.title ?? '') }),
    h('p', { text: S.voteBody }),
    h('div', { class: 'buttons' },
        h('button', { type: 'button', class: 'button', testid: 'go-on-button', text: S.goOn,
            onclick: () => actions.vote('go_on') }),
        h('button', { type: 'button', class: 'button button--secondary',
            testid: 'stay-here-button', text: S.stayHere,
            onclick: () => actions.vote('stay_here') })),
    h('p', { class: 'quiet small', text: S.stayHereHelp }));
}

function passButton(actions, text = S.pass) {
    return h('button', { type: 'button', class: 'button button--quiet', testid: 'pass-button',
        text, onclick: () => actions.pass() });
}

const COMPOSE_TEXT = {
    answer: { label: S.answerLabel, placeholder: S.answerPlaceholder },
    reflect: { label: S.reflectLabel, placeholder: S.reflectPlaceholder, help: S.reflectPrompt },
    add: { label: S.addLabel, placeholder: S.addPlaceholder },
    revealAnswer: { label: S.revealWriteLabel, placeholder: S.answerPlaceholder },
    revealReflect: { label: S.revealReflectLabel, placeholder: S.revealReflectPlaceholder,
        help: S.revealReflectPrompt },
};

function composeForm(store, actions, step, key) {
    let texts = COMPOSE_TEXT[step.type];
    if (step.reveal) {
        texts = step.type === 'answer' ? COMPOSE_TEXT.revealAnswer : COMPOSE_TEXT.revealReflect;
    }
    const id = uid('compose');
    const helpId = uid('compose-help');
    const draft = store.drafts.get(key) ?? store.drafts.get(`restore:${step.type}:${step.question}`)
        ?? '';
    const area = h('textarea', { id, name: 'text', rows: '5', maxlength: String(TEXT_MAX),
        placeholder: texts.placeholder, testid: 'compose-input', value: draft,
        'aria-describedby': texts.help ? helpId : null,
        oninput: (e) => actions.setDraft(key, e.target.value, `${step.type}:${step.question}`) });
    const error = h('p', { class: 'form-error', role: 'alert' });
    const submit = (event) => {
        event.preventDefault();
        const text = area.value.trim();
        if (!text) {
            error.textContent = S.emptyAnswer;
            area.focus();
            return;
        }
        actions.compose(step.type, text, key);
    };
    return h('form', { class: 'compose', testid: 'compose', dataset: { kind: step.type },
        onsubmit: submit, novalidate: true },
    h('label', { for: id, class: 'compose-label', text: texts.label }),
    area,
    store.draftsUnreadable ? h('p', { class: 'quiet small', testid: 'draft-unreadable',
        text: S.draftUnreadable }) : null,
    /* below the box, so that on a phone the box is on the first screen */
    texts.help ? h('p', { id: helpId, class: 'help', text: texts.help }) : null,
    error,
    h('div', { class: 'buttons' },
        h('button', { type: 'submit', class: 'button', testid: 'compose-send', text: S.send }),
        step.type === 'add'
            ? h('button', { type: 'button', class: 'button button--secondary',
                testid: 'add-cancel', text: S.cancel, onclick: () => actions.startAdding(false) })
            : null,
        passButton(actions)),
    h('p', { class: 'quiet small', text: S.passHelp }));
}

/* ---------------------------------------------------------------- notes */

function renderNotes(el, store, actions) {
    if (!el.dataset.built) {
        el.dataset.built = '1';
        const id = uid('note');
        const helpId = uid('note-help');
        const input = h('input', { id, type: 'text', maxlength: String(NOTE_MAX),
            testid: 'note-input', 'aria-describedby': helpId, autocomplete: 'off' });
        const send = (text) => {
            const t = text.trim();
            if (t) {
                actions.note(t);
            }
        };
        el.append(
            h('h2', { id: 'notes-title', text: S.noteTitle }),
            h('form', { class: 'note-form', testid: 'note-form', novalidate: true,
                onsubmit: (e) => {
                    e.preventDefault();
                    send(input.value);
                    input.value = '';
                } },
            h('label', { for: id, class: 'visually-hidden', text: S.noteLabel }),
            h('p', { id: helpId, class: 'help', text: S.noteHelp }),
            h('div', { class: 'note-row' },
                input,
                h('button', { type: 'submit', class: 'button', testid: 'note-send',
                    text: S.noteSend })),
            h('div', { class: 'quick-notes' },
                S.noteQuick.map((q) => h('button', { type: 'button',
                    class: 'button button--chip', text: q, onclick: () => send(q) })))),
            h('div', { 'data-part': 'notes-list' }));
    }
    const list = el.querySelector('[data-part=notes-list]');
    const all = notesWithLocal(store);
    keyed(list, all.map((n) => `${n.key}:${n.state ?? ''}`).join(',') + store.sendTrouble,
        () => notesList(all, store));
}

function notesWithLocal(store) {
    const local = [];
    for (const [id, l] of store.local) {
        if (l.type === 'note') {
            local.push({ ...l, key: `local-${id}`, role: store.record.role, local: true });
        }
    }
    return [...notes(store.log), ...local];
}

function notesList(all, store) {
    if (all.length === 0) {
        return [];
    }
    return h('ul', { class: 'notes-list', testid: 'notes', 'aria-label': S.notesLabel },
        all.map((n) => h('li', {}, entryView(n, store))));
}

/* ---------------------------------------------------------------- history, controls */

function renderHistory(el, store, current, open) {
    const ids = questionsSeen(store.log).filter((q) => q !== current);
    const sig = ids.map((q) => `${q}:${thread(store.log, q).length}`).join(',');
    keyed(el, `${open}|${sig}`, () => {
        if (ids.length === 0) {
            return [];
        }
        return [
            h('h2', { text: open ? S.endedTranscript : S.historyTitle }),
            h('div', { class: 'history-list', testid: 'history' },
                ids.map((q) => {
                    const entries = thread(store.log, q);
                    return h('details', { class: 'history-item', testid: 'history-item',
                        dataset: { question: q }, open },
                    h('summary', { text: store.questions.get(q)?.text ?? q }),
                    threadView(store, q, entries));
                })),
        ];
    });
}

function renderControls(el, store, actions) {
    const flow = store.room.flow;
    const paused = flow.status === 'paused';
    const { confirming, busy } = store.ui;
    keyed(el, `${paused}|${confirming}|${busy}`, () => {
        if (confirming === 'end') {
            return confirmPanel({ question: S.endConfirmQ, yes: S.endConfirm, busy,
                onYes: () => actions.end(), onNo: () => actions.askConfirm(null),
                testid: 'end-confirm' });
        }
        return h('div', { class: 'buttons' },
            paused ? null /* "carry on" is the action of the moment */
                : h('button', { type: 'button', class: 'button button--secondary',
                    testid: 'pause-button', text: S.pause, onclick: () => actions.pause() }),
            h('button', { type: 'button', class: 'button button--secondary', testid: 'end-button',
                text: S.end, onclick: () => actions.askConfirm('end') }));
    });
}

/*
 * Erasing sits apart from End, at the foot of the page, in its own section that says it
 * erases for both; its confirmation needs a box ticked before the button works, so no
 * single slip of a thumb erases a conversation.
 */
function renderErase(el, store, actions) {
    const { confirming, busy } = store.ui;
    keyed(el, `erase|${confirming === 'erase'}|${busy}`, () => {
        const head = [
            h('h2', { class: 'erase-title', text: S.eraseTitle }),
            h('p', { class: 'small', text: S.eraseExplain }),
        ];
        if (confirming !== 'erase') {
            return [...head, h('button', { type: 'button', class: 'button button--quiet',
                testid: 'erase-button', text: S.erase,
                onclick: () => actions.askConfirm('erase') })];
        }
        const boxId = uid('erase-sure');
        const yes = h('button', { type: 'button', class: 'button button--danger',
            testid: 'erase-confirm-yes', text: busy ? S.erasing : S.eraseConfirm,
            disabled: true, onclick: () => actions.erase() });
        const box = h('input', { id: boxId, type: 'checkbox', testid: 'erase-sure',
            disabled: busy, onchange: (e) => { yes.disabled = busy || !e.target.checked; } });
        return [...head, h('div', { class: 'confirm-panel', role: 'group',
            'aria-label': S.eraseConfirmBoth, testid: 'erase-confirm' },
        h('p', { text: S.eraseConfirmBoth }),
        h('p', { class: 'erase-sure' }, box, h('label', { for: boxId, text: S.eraseSure })),
        h('div', { class: 'buttons' },
            yes,
            h('button', { type: 'button', class: 'button button--secondary',
                testid: 'erase-confirm-no', text: S.cancel, disabled: busy,
                onclick: () => actions.askConfirm(null) })))];
    });
}

/* ---------------------------------------------------------------- ended */

export function renderEnded(main, store, actions) {
    if (!main.dataset.ended) {
        main.dataset.ended = '1';
        main.replaceChildren(
            h('section', { class: 'card ended', 'data-part': 'ended-head', testid: 'ended' }),
            h('div', { 'data-part': 'differ' }),
            h('section', { class: 'history history--open', 'data-part': 'history' }),
            h('section', { class: 'notes', 'data-part': 'ended-notes' }),
            h('section', { class: 'controls', 'data-part': 'controls',
                'aria-label': S.controlsLabel }),
            h('section', { class: 'erase', 'data-part': 'erase', testid: 'erase-section' }));
    }
    const part = (name) => main.querySelector(`[data-part=${name}]`);
    const finished = store.room.flow?.finished === true;
    const stayed = store.room.flow?.stayed === true;
    keyed(part('ended-head'), `ended|${finished}|${stayed}`, () => [
        h('h1', { testid: 'ended-title', text: stayed ? S.endedStayedTitle : S.endedTitle }),
        h('p', { testid: 'ended-line',
            text: finished ? S.endedFinished : (stayed ? S.endedStayed : S.endedStopped) }),
        h('p', { class: 'quiet', text: S.endedKeep }),
    ]);
    keyed(part('differ'), `differ|${store.log.entries.length}`, () => differView(store));
    renderHistory(part('history'), store, null, true);
    const all = notesWithLocal(store);
    keyed(part('ended-notes'), `notes|${all.length}`, () => (all.length
        ? h('div', { class: 'card' }, h('h2', { text: S.notesLabel }), notesList(all, store))
        : []));
    keyed(part('controls'), 'ended', () => [
        h('p', { class: 'quiet small', text: S.keepExplain }),
        keepButtons(store),
        h('div', { class: 'buttons' }, h('a', { class: 'button', href: '/', text: S.startNew })),
    ]);
    renderErase(part('erase'), store, actions);
}
