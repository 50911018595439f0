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
