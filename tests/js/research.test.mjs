// Research copies in the browser modules (static/js/research.js, crypto.js §8): the stored
// vectors still match, the copy opens with the study key, both partners compute the same
// pair tag, and raw libsodium rebuilds it from docs/crypto.md alone.

import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadModules } from './make-vectors.mjs';
import { makeResearchVectors, RESEARCH_VECTORS_PATH } from './make-research-vectors.mjs';

let thou;
let sodium;
before(async () => {
    ({ thou, sodium } = await loadModules());
});

const stored = () => JSON.parse(readFileSync(RESEARCH_VECTORS_PATH, 'utf8'));

describe('research copies', () => {
    test('tests/js/research-vectors.json matches the current constructions', async () => {
        const file = stored();
        const fresh = await makeResearchVectors(thou, sodium);
        /* Boxes are randomised: they are opened below instead. */
        for (const v of [file, fresh]) {
            delete v.consent.sealed_b64url;
            delete v.copy.boxed_b64url;
        }
        assert.deepEqual(fresh, file, 'a construction changed: if on purpose, run '
            + 'node tests/js/make-research-vectors.mjs and update docs/crypto.md and the C side');
    });

    test('the stored copies open with the study key and name their rows', () => {
        const v = stored();
        const consent = JSON.parse(thou.openForStudy(sodium.from_hex(v.study.public_key),
            sodium.from_hex(v.study.secret_key), v.consent.sealed_b64url));
        assert.equal(consent.copy_key, thou.encodeB64(sodium.from_hex(v.copy_key.public_key)));
        assert.equal(consent.pair, v.pair.tag);
        const text = thou.openBoxForStudy(thou.decodeB64(consent.copy_key),
            sodium.from_hex(v.study.secret_key), v.copy.boxed_b64url);
        assert.equal(text, v.copy.plaintext);
        const copy = JSON.parse(text);
        assert.equal(copy.room, v.copy.room);
        assert.equal(copy.sender, v.copy.sender);
        assert.equal(copy.step, v.copy.step);
        assert.equal(copy.v, 1);
        /* Another copy key, or one byte changed: it does not open. */
        assert.throws(() => thou.openBoxForStudy(sodium.from_hex(v.study.public_key),
            sodium.from_hex(v.study.secret_key), v.copy.boxed_b64url), { code: 'tampered' });
        const bytes = thou.decodeB64(v.copy.boxed_b64url);
        bytes[30] ^= 1;
        assert.throws(() => thou.openBoxForStudy(thou.decodeB64(consent.copy_key),
            sodium.from_hex(v.study.secret_key), thou.encodeB64(bytes)), { code: 'tampered' });
    });

    test('both partners compute the same pair tag; raw libsodium rebuilds it', () => {
        const v = stored();
        const aTx = sodium.from_hex(v.pair.a_tx);
        const aRx = sodium.from_hex(v.pair.a_rx);
        assert.equal(thou.researchPairTag('A', { tx: aTx, rx: aRx }), v.pair.tag);
        /* B's keys are A's, crossed over. */
        assert.equal(thou.researchPairTag('B', { tx: aRx, rx: aTx }), v.pair.tag);
        const key = new Uint8Array(64);
        key.set(aTx, 0);
        key.set(aRx, 32);
        assert.equal(sodium.to_hex(sodium.crypto_generichash(16,
            new TextEncoder().encode(v.pair.tag_input), key)), v.pair.tag);
        /* Another pair's keys give another tag. */
        assert.notEqual(thou.researchPairTag('A', { tx: aRx, rx: aTx }), v.pair.tag);
    });
});

/* ---------------------------------------------------------------- the controller */

describe('the research controller (static/js/research.js)', () => {
    let Research;
    let calls;
    let answer; /* (method, path, body) → {status, body} */
    const study = () => {
        const keys = sodium.crypto_box_keypair();
        return { keys, json: { name: 'pilot', public_key: thou.encodeB64(keys.publicKey),
            closeness: true }, fingerprint: thou.fingerprint(keys.publicKey) };
    };
    const session = () => ({ tx: sodium.randombytes_buf(32), rx: sodium.randombytes_buf(32) });

    before(async () => {
        ({ Research } = await import('../../static/js/research.js'));
        globalThis.fetch = async (path, init) => {
            const body = init.body ? JSON.parse(init.body) : null;
            calls.push({ method: init.method, path, body });
            const { status = 200, json = {} } = answer(init.method, path, body) ?? {};
            return { ok: status < 400, status, headers: { get: () => null },
                json: async () => json };
        };
    });

    function make(s, { fingerprint = s.fingerprint, role = 'A', keys = session() } = {}) {
        calls = [];
        answer = () => ({ status: 201, json: {} });
        const sent = [];
        const record = { studyFingerprint: fingerprint };
        const research = new Research({
            roomId: 'room1', role, token: 'tok', record, study: s.json,
            stageOf: (q) => (q ? 'stage-1' : null), session: () => keys,
            sendSealed: (type, question, text) => sent.push({ type, question, text }),
            persist: async () => {}, render: () => {},
        });
        return { research, sent, record };
    }

    const settle = async (research) => {
        for (let i = 0; i < 50 && !research.settled; i++) {
            await new Promise((r) => setTimeout(r, 5));
        }
    };

    test('a study key that does not match the link is refused: no choice, no copies', async () => {
        const s = study();
        const { research, sent } = make(s, { fingerprint: '0000 0000 0000 0000 0000 0000 0000 0000' });
        assert.equal(research.keyMismatch, true);
        research.choose(true);
        assert.equal(sent.length, 0);
        const text = JSON.stringify({ study: 'pilot', fingerprint: s.fingerprint });
        research.onChoice('A', 'consent', text);
        research.onChoice('B', 'consent', text);
        assert.equal(research.active, false);
        research.onOwnStep({ kind: 'answer', question: 'q1', text: 'hi', counter: 3, time: 5 });
        await settle(research);
        assert.equal(calls.length, 0);
    });

    test('copies only after both consent to this study; they open with the study key', async () => {
        const s = study();
        const { research, sent } = make(s);
        research.onStart(1_000_000);
        research.choose(true);
        assert.deepEqual(sent.map((x) => x.type), ['consent']);
        assert.deepEqual(JSON.parse(sent[0].text), { study: 'pilot', fingerprint: s.fingerprint });
        research.onOwnStep({ kind: 'answer', question: 'q1', text: 'first words',
            counter: 3, time: 1_012_500 });
        research.onOwnStep({ kind: 'note', question: null, text: 'not copied', counter: 4,
            time: 1_013_000 });
        const mine = JSON.stringify({ study: 'pilot', fingerprint: s.fingerprint });
        research.onChoice('A', 'consent', mine);
        /* A consent about another study, or another key, is no consent. */
        research.onChoice('B', 'consent', JSON.stringify({ study: 'other', fingerprint: s.fingerprint }));
        research.onChoice('B', 'consent', JSON.stringify({ study: 'pilot', fingerprint: 'x' }));
        await settle(research);
        assert.equal(research.active, false);
        assert.equal(calls.length, 0, 'nothing before the partner agreed');
        research.onChoice('B', 'consent', mine);
        assert.equal(research.active, true);
        await settle(research);
        const posted = calls.filter((c) => c.method === 'POST');
        assert.deepEqual(posted.map((c) => c.body.step), ['consent', 'c3']);
        const consent = JSON.parse(thou.openForStudy(s.keys.publicKey, s.keys.privateKey,
            posted[0].body.sealed));
        assert.equal(consent.kind, 'consent');
        assert.equal(consent.room, 'room1');
        assert.equal(consent.sender, 'A');
        const step = JSON.parse(thou.openBoxForStudy(thou.decodeB64(consent.copy_key),
            s.keys.privateKey, posted[1].body.sealed));
        assert.deepEqual(step, { v: 1, room: 'room1', sender: 'A', step: 'c3', kind: 'answer',
            question: 'q1', stage: 'stage-1', t: 12.5, text: 'first words' });
        /* The closeness rating is copied too, once. */
        research.setCloseness('before', 4);
        research.setCloseness('before', 6);
        await settle(research);
        const ratings = calls.filter((c) => c.body?.step === 'closeness-before');
        assert.equal(ratings.length, 1);
        const rating = JSON.parse(thou.openBoxForStudy(thou.decodeB64(consent.copy_key),
            s.keys.privateKey, ratings[0].body.sealed));
        assert.equal(rating.value, 4);
    });

    test('a decline is final; a withdrawal stops copies and deletes them', async () => {
        const s = study();
        const text = JSON.stringify({ study: 'pilot', fingerprint: s.fingerprint });
        const declined = make(s).research;
        declined.onChoice('B', 'decline', text);
        declined.onChoice('B', 'consent', text);
        declined.onChoice('A', 'consent', text);
        assert.equal(declined.active, false);

        const { research, sent } = make(s);
        research.onChoice('A', 'consent', text);
        research.onChoice('B', 'consent', text);
        await settle(research);
        await research.withdraw();
        assert.equal(sent.at(-1).type, 'withdraw');
        assert.ok(calls.some((c) => c.method === 'DELETE' && c.path === '/api/rooms/room1/research'));
        const before = calls.length;
        research.onOwnStep({ kind: 'answer', question: 'q2', text: 'later', counter: 9, time: 1 });
        await settle(research);
        assert.equal(calls.length, before, 'nothing is copied after a withdrawal');
        assert.equal(research.rec.copyKeys, null, 'the copy key is not kept');
    });

    test('release sends what is left out, once; the review lists only written words', async () => {
        const s = study();
        const text = JSON.stringify({ study: 'pilot', fingerprint: s.fingerprint });
        const { research } = make(s, { role: 'B' });
        research.onChoice('A', 'consent', text);
        research.onChoice('B', 'consent', text);
        research.onOwnStep({ kind: 'answer', question: 'q1', text: 'keep', counter: 2, time: 1 });
        research.onOwnStep({ kind: 'pass', question: 'q2', text: '', counter: 3, time: 2 });
        research.onOwnStep({ kind: 'reflect', question: 'q3', text: 'drop', counter: 4, time: 3 });
        await settle(research);
        assert.deepEqual(research.reviewItems().map((i) => i.step), ['c2', 'c4']);
        answer = (method, path) => (path.endsWith('/release')
            ? { status: 200, json: { released: 3, left_out: 1 } } : { status: 201 });
        await research.release(['c4']);
        const release = calls.find((c) => c.path === '/api/rooms/room1/research/release');
        assert.deepEqual(release.body, { leave_out: ['c4'] });
        assert.deepEqual(research.rec.released, { released: 3, leftOut: 1 });
        const count = calls.length;
        await research.release([]);
        assert.equal(calls.length, count, 'released is final');
    });
});
