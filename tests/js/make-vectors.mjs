// Test vectors for static/js/crypto.js, for C code (libsodium 1.0.18) to check against.
//
//   node tests/js/make-vectors.mjs     rewrites tests/js/vectors.json
//
// Everything is derived from fixed inputs (room secret, key-pair seeds, one nonce), so
// the output is reproducible, except study.sealed_b64url: crypto_box_seal draws a fresh
// ephemeral key each time. crypto.test.mjs regenerates the vectors and compares them with
// the committed file, so a change to any construction fails until the file is
// deliberately rewritten (and docs/crypto.md and the C side are updated with it).

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
export const VECTORS_PATH = here('./vectors.json');
const VENDOR_PATH = here('../../static/vendor/libsodium-wrappers.mjs');

/** Import thou.js and the vendored libsodium-wrappers, failing clearly if not vendored. */
export async function loadModules() {
    if (!existsSync(VENDOR_PATH)) {
        throw new Error(`${VENDOR_PATH} is missing: run 'npm ci && bash script/vendor-js' first`);
    }
    const thou = await import('../../static/js/crypto.js');
    const sodium = (await import('../../static/vendor/libsodium-wrappers.mjs')).default;
    await thou.ready();
    await sodium.ready;
    return { thou, sodium };
}

const range = (start, n) => Uint8Array.from({ length: n }, (_, i) => (start + i) & 0xff);

function packageVersion(name) {
    const path = here(`../../node_modules/${name}/package.json`);
    return existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')).version : null;
}

/** Build the vector object (see the module comment). */
export function makeVectors(thou, sodium) {
    const hex = (b) => sodium.to_hex(b);
    const utf8 = (s) => new TextEncoder().encode(s);

    const roomSecret = range(0x00, 32);
    const roomId = 'vecRoom_01-xyz';
    const room = thou.deriveRoomKeys(roomSecret);

    const a = sodium.crypto_kx_seed_keypair(range(0x20, 32));
    const b = sodium.crypto_kx_seed_keypair(range(0x40, 32));
    const rawA = sodium.crypto_kx_client_session_keys(a.publicKey, a.privateKey, b.publicKey);
    const keysA = thou.sessionKeys('A', a, b.publicKey);
    const keysB = thou.sessionKeys('B', b, a.publicKey);

    /* A small set in the shape of GET /api/sets/{id}, with text that needs escaping. */
    const set = {
        id: 'vec-set', version: 3, title: 'Vectors "quoted"', language: 'en',
        description: 'Zwei Menschen — 💛\n', minutes: 5,
        stages: [{ id: 's1', title: 'One', intro: 'Tab\there', listening: true,
            questions: [{ id: 'q1', text: 'What do you hear?', hint: 'Listen.',
                reveal_together: false }] }],
    };
    const setHash = thou.questionSetHash(set);

    const answer = {
        kind: 'answer',
        roomId,
        sender: 'A',
        counter: 7,
        question: 'common-ground-1',
        setHash,
        plaintext: 'Ich höre dich. I hear you — 💛',
    };
    const nonce = range(0x60, 24);
    const ad = thou.messageAD(answer);
    const padded = sodium.pad(utf8(answer.plaintext), thou.PAD_BLOCK);
    const ciphertext = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
        padded, ad, null, nonce, keysA.tx);
    const sealed = new Uint8Array(nonce.length + ciphertext.length);
    sealed.set(nonce);
    sealed.set(ciphertext, nonce.length);

    const study = sodium.crypto_box_seed_keypair(range(0x80, 32));
    const studyPlaintext = JSON.stringify({ room: roomId, sender: 'A', counter: 7,
        question: answer.question, answer: answer.plaintext });

    return {
        about: 'thou crypto test vectors; bytes are lowercase hex unless the name ends in '
            + '_b64url (unpadded base64url) or the value is text; see docs/crypto.md',
        versions: {
            'libsodium-wrappers': packageVersion('libsodium-wrappers'),
            libsodium: packageVersion('libsodium'),
            'libsodium C (wasm)': thou.libraryVersion(),
        },
        set: {
            json: JSON.stringify(set),
            canonical_json: thou.canonicalJson(set),
            input: hex(thou.questionSetInput(set)),
            hash: hex(setHash),
        },
        room: {
            room_secret: hex(roomSecret),
            room_secret_b64url: thou.encodeB64(roomSecret),
            kdf_context: 'thouroom',
            join_secret_subkey_id: 1,
            mac_key_subkey_id: 2,
            join_secret: hex(room.joinSecret),
            join_secret_b64url: thou.encodeB64(room.joinSecret),
            join_verifier: hex(room.joinVerifier),
            join_verifier_b64url: thou.encodeB64(room.joinVerifier),
            mac_key: hex(room.macKey),
        },
        keys: {
            room_id: roomId,
            seed_a: hex(range(0x20, 32)),
            public_key_a: hex(a.publicKey),
            private_key_a: hex(a.privateKey),
            seed_b: hex(range(0x40, 32)),
            public_key_b: hex(b.publicKey),
            private_key_b: hex(b.privateKey),
            key_mac_input_a: hex(thou.publicKeyMacInput(roomId, 'A', a.publicKey)),
            key_mac_a: hex(thou.macPublicKey(room.macKey, roomId, 'A', a.publicKey)),
            key_mac_input_b: hex(thou.publicKeyMacInput(roomId, 'B', b.publicKey)),
            key_mac_b: hex(thou.macPublicKey(room.macKey, roomId, 'B', b.publicKey)),
            session_context: 'thousess',
            message_key_subkey_id: 1,
            confirm_key_subkey_id: 2,
            kx_a_tx: hex(rawA.sharedTx),
            kx_a_rx: hex(rawA.sharedRx),
            a_tx: hex(keysA.tx),
            a_rx: hex(keysA.rx),
            a_confirm_tx: hex(keysA.confirmTx),
            a_confirm_rx: hex(keysA.confirmRx),
            b_tx: hex(keysB.tx),
            b_rx: hex(keysB.rx),
            b_confirm_tx: hex(keysB.confirmTx),
            b_confirm_rx: hex(keysB.confirmRx),
            confirm_input_a: hex(thou.confirmationInput(roomId, 'A', a.publicKey, b.publicKey,
                setHash)),
            confirm_mac_a: hex(thou.confirmationMac(keysA.confirmTx, roomId, 'A',
                a.publicKey, b.publicKey, setHash)),
            confirm_input_b: hex(thou.confirmationInput(roomId, 'B', a.publicKey, b.publicKey,
                setHash)),
            confirm_mac_b: hex(thou.confirmationMac(keysB.confirmTx, roomId, 'B',
                a.publicKey, b.publicKey, setHash)),
            safety_input: hex(thou.safetyCodeInput(a.publicKey, b.publicKey)),
            safety_hash: hex(sodium.crypto_generichash(32,
                thou.safetyCodeInput(a.publicKey, b.publicKey), null)),
            safety_code: thou.safetyCode(a.publicKey, b.publicKey),
        },
        workshop: {
            room_id: roomId,
            commit_input: hex(thou.keyCommitmentInput(roomId, a.publicKey)),
            commitment: hex(thou.keyCommitment(roomId, a.publicKey)),
            sas_input: hex(thou.shortSafetyCodeInput(roomId, a.publicKey, b.publicKey)),
            sas_hash: hex(sodium.crypto_generichash(32,
                thou.shortSafetyCodeInput(roomId, a.publicKey, b.publicKey), null)),
            sas_code: thou.shortSafetyCode(roomId, a.publicKey, b.publicKey),
        },
        answer: {
            algorithm: 'crypto_aead_xchacha20poly1305_ietf',
            key: hex(keysA.tx),
            kind: answer.kind,
            room_id: answer.roomId,
            sender: answer.sender,
            counter: answer.counter,
            question: answer.question,
            set_hash: hex(setHash),
            ad: hex(ad),
            plaintext: answer.plaintext,
            plaintext_utf8: hex(utf8(answer.plaintext)),
            pad_block_size: thou.PAD_BLOCK,
            padded: hex(padded),
            nonce: hex(nonce),
            sealed_b64url: thou.encodeB64(sealed),
        },
        study: {
            seed: hex(range(0x80, 32)),
            public_key: hex(study.publicKey),
            secret_key: hex(study.privateKey),
            fingerprint: thou.fingerprint(study.publicKey),
            pad_block_size: thou.PAD_BLOCK,
            plaintext: studyPlaintext,
            sealed_b64url: thou.sealForStudy(study.publicKey, studyPlaintext),
        },
    };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
    const { thou, sodium } = await loadModules();
    writeFileSync(VECTORS_PATH, `${JSON.stringify(makeVectors(thou, sodium), null, 2)}\n`);
    console.log(`wrote ${VECTORS_PATH}`);
}
