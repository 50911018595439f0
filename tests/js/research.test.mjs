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
        delete file.copy.sealed_b64url; /* a sealed box is randomised: opened below instead */
        delete fresh.copy.sealed_b64url;
        assert.deepEqual(fresh, file, 'a construction changed: if on purpose, run '
            + 'node tests/js/make-research-vectors.mjs and update docs/crypto.md and the C side');
    });

    test('the stored copy opens with the study key and names its row', () => {
        const v = stored();
        const text = thou.openForStudy(sodium.from_hex(v.study.public_key),
            sodium.from_hex(v.study.secret_key), v.copy.sealed_b64url);
        assert.equal(text, v.copy.plaintext);
        const copy = JSON.parse(text);
        assert.equal(copy.room, v.copy.room);
        assert.equal(copy.sender, v.copy.sender);
        assert.equal(copy.step, v.copy.step);
        assert.equal(copy.v, 1);
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
