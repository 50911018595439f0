// A research study in the browser (docs/research.md): the partners' consent as sealed events,
// sealed copies of this person's own steps once both agreed, withdrawal, the closeness scale,
// and the review before release. No DOM here (research-view.js draws it); the conversation
// page feeds it the events it opened and gives it a way to send sealed events.

import * as crypto from './crypto.js';
import * as api from './api.js';

/** The steps that are copied, and those whose text a person reviews. */
export const COPIED_KINDS = new Set(['answer', 'reflect', 'add', 'pass', 'confirm_heard']);
export const TEXT_KINDS = new Set(['answer', 'reflect', 'add']);

const RETRY_MS = 2000;

/** What a sealed consent, decline or withdraw event says: which study, by its key. */
export function choiceText(study) {
    return JSON.stringify({ study: study.name, fingerprint: study.fingerprint });
}

/**
 * The plaintext of one research copy. A sealed box has no associated data, so the context
 * the export checks the copy against (room, sender, step) is inside it.
 */
export function copyPlaintext({ roomId, role, step, kind, ...fields }) {
    return JSON.stringify({ v: 1, room: roomId, sender: role, step, kind, ...fields });
}

export class Research {
    /**
     * deps: {roomId, role, token, record, study (from GET /api/rooms), stageOf(question),
     * session() → {tx, rx} or null, sendSealed(type, question, text), persist(), render()}.
     */
    constructor(deps) {
        Object.assign(this, deps);
        const study = deps.study;
        let publicKey = null;
        try {
            publicKey = crypto.decodeB64(study.public_key, crypto.PUBLIC_KEY_BYTES);
        } catch {
            publicKey = null;
        }
        const fingerprint = publicKey ? crypto.fingerprint(publicKey) : null;
        this.study = { name: study.name, publicKey, fingerprint, closeness: study.closeness === true };
        /* The key must be the one the invitation named: the server alone cannot change both. */
        this.keyMismatch = !fingerprint || deps.record.studyFingerprint !== fingerprint;
        this.rec = deps.record.research ??= { sent: [], closeness: {}, released: null };
        /* This partner's copy key: its public half goes in the sealed consent copy, and every
         * other copy is boxed with it (docs/crypto.md §8). */
        this.rec.copyKeys ??= null;
        this.choice = { A: null, B: null };
        this.pending = null; /* the choice this person made that is not back from the server yet */
        this.own = [];       /* this person's steps as the log showed them */
        this.startMs = null;
        this.queue = [];
        this.queued = new Set();
        this.posting = false;
        this.trouble = false;
        this.stopped = false;
    }

    get active() {
        return !this.keyMismatch && this.choice.A === 'consent' && this.choice.B === 'consent';
    }

    get partner() {
        return this.role === 'A' ? 'B' : 'A';
    }

    /** A consent, decline or withdraw event that opened; text is its sealed plaintext. */
    onChoice(role, type, text) {
        let said;
        try {
            said = JSON.parse(text);
        } catch {
            said = null;
        }
        /* A choice about another study (or key) is no consent to this one. */
        if (!said || said.study !== this.study.name || said.fingerprint !== this.study.fingerprint) {
            return;
        }
        if (this.choice[role] === 'withdraw' || this.choice[role] === 'decline') {
            return; /* final */
        }
        this.choice[role] = type;
        if (role === this.role) {
            this.pending = null;
        }
        this.update();
    }

    /** The time the partner joined: the conversation's start for relative times. */
    onStart(timeMs) {
        if (this.startMs === null && Number.isSafeInteger(timeMs)) {
            this.startMs = timeMs;
        }
    }

    /** One of this person's own steps, as stored by the server (its echo on the stream). */
    onOwnStep({ kind, question, text, counter, time }) {
        if (!COPIED_KINDS.has(kind) || !Number.isSafeInteger(counter)) {
            return;
        }
        const step = `c${counter}`;
        if (this.own.some((s) => s.step === step)) {
            return;
        }
        this.own.push({ step, kind, question, text: TEXT_KINDS.has(kind) ? text ?? '' : '', time });
        this.update();
    }

    seconds(time) {
        if (this.startMs === null || !Number.isSafeInteger(time)) {
            return null;
        }
        return Math.max(0, Math.round((time - this.startMs) / 100) / 10);
    }

    /** Queue what is not copied yet, while both consent and nothing was released. */
    update() {
        if (!this.active || this.rec.released || this.stopped) {
            return;
        }
        const session = this.session();
        if (!session) {
            return;
        }
        if (!this.rec.copyKeys) {
            this.rec.copyKeys = crypto.newCopyKeyPair();
            this.persist().catch(() => {});
        }
        const sent = new Set(this.rec.sent);
        const add = (step, fields) => {
            if (!sent.has(step) && !this.queued.has(step)) {
                this.queued.add(step);
                this.queue.push({ step, plaintext: copyPlaintext({
                    roomId: this.roomId, role: this.role, step, ...fields }) });
            }
        };
        add('consent', { kind: 'consent', study: this.study.name,
            fingerprint: this.study.fingerprint, pair: crypto.researchPairTag(this.role, session),
            copy_key: crypto.encodeB64(this.rec.copyKeys.publicKey) });
        for (const [when, value] of Object.entries(this.rec.closeness)) {
            add(`closeness-${when}`, { kind: 'closeness', when, value });
        }
        for (const s of this.own) {
            add(s.step, { kind: s.kind, question: s.question, stage: this.stageOf(s.question),
                t: this.seconds(s.time), text: s.text });
        }
        this.pump();
    }

    async pump() {
        if (this.posting) {
            return;
        }
        this.posting = true;
        while (this.queue.length > 0 && !this.stopped) {
            const item = this.queue[0];
            try {
                /* The consent copy is sealed (anonymous sender) and announces the copy key;
                 * every other copy is boxed from that key. */
                const sealed = item.step === 'consent'
                    ? crypto.sealForStudy(this.study.publicKey, item.plaintext)
                    : crypto.boxForStudy(this.study.publicKey, this.rec.copyKeys.privateKey,
                        item.plaintext);
                await api.postResearchCopy(this.roomId, this.token, item.step, sealed);
                this.queue.shift();
                this.queued.delete(item.step);
                this.rec.sent.push(item.step);
                this.trouble = false;
                this.persist().catch(() => {});
            } catch (error) {
                if (error.status === 0 || error.status >= 500 || error.status === 429) {
                    this.trouble = true;
                    this.render();
                    await new Promise((resolve) => {
                        setTimeout(resolve, RETRY_MS);
                    });
                    continue;
                }
                /* 409: consent is gone or the copies were released; 4xx: nothing to retry. */
                this.queue = [];
                this.queued.clear();
                this.stopped = true;
            }
        }
        this.posting = false;
        this.render();
    }

    /** This person's answer to the consent question. */
    choose(consent) {
        if (this.keyMismatch || this.choice[this.role] || this.pending) {
            return;
        }
        this.pending = consent ? 'consent' : 'decline';
        this.sendSealed(this.pending, null, choiceText(this.study));
        this.render();
    }

    /** Withdraw: no new copies, and the server deletes every copy of the room. */
    async withdraw() {
        if (this.choice[this.role] !== 'consent' || this.rec.released) {
            return;
        }
        this.stopped = true;
        this.queue = [];
        this.queued.clear();
        this.pending = 'withdraw';
        this.sendSealed('withdraw', null, choiceText(this.study));
        this.render();
        for (;;) {
            try {
                await api.deleteResearchCopies(this.roomId, this.token);
                this.rec.sent = [];
                this.rec.copyKeys = null;
                this.persist().catch(() => {});
                break;
            } catch (error) {
                if (error.status !== 0 && error.status < 500) {
                    break;
                }
                await new Promise((resolve) => {
                    setTimeout(resolve, RETRY_MS);
                });
            }
        }
        this.render();
    }

    /** A closeness rating (1–7), before the first question or after the last. */
    setCloseness(when, value) {
        if (!Number.isInteger(value) || value < 1 || value > 7 || this.rec.closeness[when]) {
            return;
        }
        this.rec.closeness[when] = value;
        this.persist().catch(() => {});
        this.update();
        this.render();
    }

    /** What the review lists: this person's own words, with the steps they came in. */
    reviewItems() {
        return this.own.filter((s) => TEXT_KINDS.has(s.kind));
    }

    /** Everything queued has reached the server. */
    get settled() {
        return this.queue.length === 0 && !this.posting;
    }

    /** Release after review, leaving out the listed steps. Final. */
    async release(leaveOut) {
        if (!this.active || this.rec.released || this.releasing || !this.settled) {
            return;
        }
        this.releasing = true;
        this.releaseError = false;
        this.render();
        try {
            const done = await api.releaseResearchCopies(this.roomId, this.token, leaveOut);
            this.rec.released = { released: done.released, leftOut: done.left_out };
            this.rec.copyKeys = null; /* nothing more is copied: the key is not kept */
            this.persist().catch(() => {});
        } catch (error) {
            if (error.code === 'already_released') {
                this.rec.released = { released: 0, leftOut: 0 };
            } else {
                this.releaseError = true;
            }
        } finally {
            this.releasing = false;
        }
        this.render();
    }
}
