// Test vectors of research copies (docs/crypto.md §8, docs/research.md), made by the browser
// modules from fixed inputs: the study key from crypto_box_seed_keypair(80 … 9f), the session
// keys of tests/js/vectors.json, a partner's copy key from crypto_box_seed_keypair(a0 … bf),
// its consent copy (sealed) and one step copy (boxed) as static/js/research.js writes them. The
// C side (tests/unit/test_research.c) opens both with the export's code and rebuilds the tag.
//
//   node tests/js/make-research-vectors.mjs     writes tests/js/research-vectors.json
//
// Reproducible except consent.sealed_b64url and copy.boxed_b64url (fresh randomness each).

import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadModules } from './make-vectors.mjs';

export const RESEARCH_VECTORS_PATH = fileURLToPath(new URL('research-vectors.json', import.meta.url));
const VECTORS_PATH = fileURLToPath(new URL('vectors.json', import.meta.url));

const range = (start, n) => Uint8Array.from({ length: n }, (_, i) => start + i);

export async function makeResearchVectors(thou, sodium) {
    const { copyPlaintext, choiceText } = await import('../../static/js/research.js');
    const keys = JSON.parse(readFileSync(VECTORS_PATH, 'utf8')).keys;
    const study = sodium.crypto_box_seed_keypair(range(0x80, 32));
    const session = { tx: sodium.from_hex(keys.a_tx), rx: sodium.from_hex(keys.a_rx) };
    const fingerprint = thou.fingerprint(study.publicKey);
    const copyKey = sodium.crypto_box_seed_keypair(range(0xa0, 32));
    const pairTag = thou.researchPairTag('A', session);
    const consent = copyPlaintext({
        roomId: keys.room_id, role: 'A', step: 'consent', kind: 'consent', study: 'vectors',
        fingerprint, pair: pairTag, copy_key: thou.encodeB64(copyKey.publicKey),
    });
    const plaintext = copyPlaintext({
        roomId: keys.room_id, role: 'A', step: 'c12', kind: 'answer', question: 'cg-good-moment',
        stage: 'common-ground', t: 12.5, text: 'Ich höre dich, "wirklich".\nI hear you — 💛',
    });
    return {
        about: 'research copies as static/js/research.js makes them; bytes are lowercase hex; '
            + 'see docs/crypto.md §8',
        study: {
            seed: sodium.to_hex(range(0x80, 32)),
            public_key: sodium.to_hex(study.publicKey),
            public_key_b64url: thou.encodeB64(study.publicKey),
            secret_key: sodium.to_hex(study.privateKey),
            fingerprint,
            name: 'vectors',
        },
        pair: {
            a_tx: keys.a_tx,
            a_rx: keys.a_rx,
            tag_input: 'thou research pair v1',
            tag: pairTag,
        },
        copy_key: {
            seed: sodium.to_hex(range(0xa0, 32)),
            public_key: sodium.to_hex(copyKey.publicKey),
            secret_key: sodium.to_hex(copyKey.privateKey),
        },
        consent: {
            room: keys.room_id,
            sender: 'A',
            step: 'consent',
            plaintext: consent,
            sealed_b64url: thou.sealForStudy(study.publicKey, consent),
        },
        choice: {
            plaintext: choiceText({ name: 'vectors', fingerprint }),
        },
        copy: {
            room: keys.room_id,
            sender: 'A',
            step: 'c12',
            pad_block_size: thou.PAD_BLOCK,
            plaintext,
            boxed_b64url: thou.boxForStudy(study.publicKey, copyKey.privateKey, plaintext),
        },
    };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
    const { thou, sodium } = await loadModules();
    const vectors = await makeResearchVectors(thou, sodium);
    writeFileSync(RESEARCH_VECTORS_PATH, `${JSON.stringify(vectors, null, 2)}\n`);
    console.log(`wrote ${RESEARCH_VECTORS_PATH}`);
}
