// Half-written text that survives a reload, a tab the phone dropped, or going offline. Kept
// in the room's IndexedDB record, sealed with AES-GCM under a key made by WebCrypto as
// non-extractable: the browser keeps it and never lets this code, or anything else, read
// it out. Drafts go with the record (erase) and are cleared when the conversation ends.

const ALGO = 'AES-GCM';
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Bind a sealed draft to its room and its place, so it cannot be moved to another box. */
function additionalData(roomId, name) {
    return encoder.encode(`thou-draft\0${roomId}\0${name}`);
}

async function draftKey(record) {
    if (!record.draftKey) {
        record.draftKey = await crypto.subtle.generateKey({ name: ALGO, length: 256 }, false,
            ['encrypt', 'decrypt']);
    }
    return record.draftKey;
}

/** Seal `text` as the draft `name` of this record (an empty text removes it). */
export async function saveDraft(record, roomId, name, text) {
    record.drafts ??= {};
    if (!text) {
        delete record.drafts[name];
        return;
    }
    const key = await draftKey(record);
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const sealed = await crypto.subtle.encrypt(
        { name: ALGO, iv, additionalData: additionalData(roomId, name) }, key,
        encoder.encode(text));
    record.drafts[name] = { iv, sealed: new Uint8Array(sealed) };
}

/**
 * Open every draft of the record: {texts: Map name → text, unreadable: n}. A draft that
 * does not open (damaged storage, or a key the browser lost) is set aside, not fatal.
 */
export async function openDrafts(record, roomId) {
    const texts = new Map();
    let unreadable = 0;
    const all = record.drafts ?? {};
    for (const [name, d] of Object.entries(all)) {
        try {
            if (!record.draftKey || !(d?.iv instanceof Uint8Array)
                || !(d?.sealed instanceof Uint8Array)) {
                throw new Error('malformed draft');
            }
            const plain = await crypto.subtle.decrypt(
                { name: ALGO, iv: d.iv, additionalData: additionalData(roomId, name) },
                record.draftKey, d.sealed);
            texts.set(name, decoder.decode(plain));
        } catch {
            unreadable += 1;
            delete all[name];
        }
    }
    return { texts, unreadable };
}

/** Forget every draft and the key (the conversation ended). */
export function clearDrafts(record) {
    const had = Boolean(record.drafts && Object.keys(record.drafts).length) || !!record.draftKey;
    delete record.drafts;
    delete record.draftKey;
    return had;
}
