// What this browser keeps about its conversations: one IndexedDB record per room.
//
// Record (structured-clone values; Uint8Array for bytes):
//   room        room id (the key)
//   v           record version (RECORD_VERSION; 1 was the thou1 format, which cannot continue)
//   role        "A" or "B"
//   token       bearer token for this room
//   secret      the room secret S from the link (32 bytes; MAC key and link derive from it);
//               absent once both keys are confirmed
//   keyPair     { publicKey, privateKey } for crypto_kx (32 bytes each)
//   keySent     true once the server stored our `key` event
//   confirmSent true once the server stored our `confirm` event
//   counter     highest message counter this browser has used (persisted before sending)
//   outbox      events written but not yet acknowledged by the server, in order:
//               [{ id, body, afterSeq }] — bodies are already sealed (no plaintext here)
//   created     Date.now() at creation
//   expires     when the room expires on the server (ms; from GET /api/rooms/{room}); the
//               record, with every key in it, is swept on the next page load after that
//   joining     true while a join's answer has not arrived (retried with the same token)
//   setHash     questionSetHash of the set as first seen (32 bytes), pinned
//   partnerKey  the partner's public key as first verified (32 bytes), pinned for good
//   partnerConfirmed  true once the partner's key confirmation verified; `secret` is then
//               deleted (it is only needed to verify the partner's key)
//   highest     { A, B }: the highest message counter opened from each sender, so a log
//               replayed after a reload that ends below it is noticed
//   moving      the seat's previous token while a move from another device (move.js) has
//               not been confirmed by the server (retried with the same new token)
//   title       the question set's title, for the start page's list of conversations
//   ended       true once the room was seen ended (then it is no longer listed as going on)
//
// Writes are serialised, so a later put never lands before an earlier one.

/** Version of the record layout and of the crypto format it goes with (docs/crypto.md). */
export const RECORD_VERSION = 2;

const DB_NAME = 'thou';
const DB_VERSION = 1;
const ROOMS = 'rooms';

function promised(request) {
    return new Promise((resolve, reject) => {
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
    });
}

function openDb() {
    if (!globalThis.indexedDB) {
        return Promise.reject(new Error('IndexedDB is not available'));
    }
    const request = indexedDB.open(DB_NAME, DB_VERSION);
    request.onupgradeneeded = () => {
        const db = request.result;
        if (!db.objectStoreNames.contains(ROOMS)) {
            db.createObjectStore(ROOMS, { keyPath: 'room' });
        }
    };
    return promised(request);
}

/** The database connection and the write queue: the module's only state, set once. */
const handle = { db: null, writes: Promise.resolve() };

async function database() {
    if (!handle.db) {
        handle.db = openDb();
    }
    return handle.db;
}

async function run(mode, fn) {
    const db = await database();
    return new Promise((resolve, reject) => {
        const tx = db.transaction(ROOMS, mode);
        const result = fn(tx.objectStore(ROOMS));
        tx.oncomplete = () => resolve(result.result);
        tx.onerror = () => reject(tx.error);
        tx.onabort = () => reject(tx.error ?? new Error('transaction aborted'));
    });
}

function queued(fn) {
    const next = handle.writes.then(fn, fn);
    handle.writes = next.catch(() => {});
    return next;
}

/** Fails if IndexedDB cannot be opened (private mode, disabled storage). */
export async function check() {
    await database();
}

/** The record of a room, or undefined. */
export function getRoom(room) {
    return run('readonly', (store) => store.get(room));
}

/** Every room record this browser keeps (the start page lists them). */
export function allRooms() {
    return run('readonly', (store) => store.getAll());
}

/** Store (replace) a room's record. Resolves once the transaction committed. */
export function putRoom(record) {
    const copy = structuredClone(record);
    return queued(() => run('readwrite', (store) => store.put(copy)));
}

/** Forget a room. */
export function deleteRoom(room) {
    return queued(() => run('readwrite', (store) => store.delete(room)));
}

/**
 * Delete every record whose room has expired (`expires`, or `created` plus `fallbackMs`
 * when the server's expiry was never learnt), so no key outlives its room. Run on every
 * page load.
 */
export function sweep(now, fallbackMs = 30 * 86400 * 1000) {
    return queued(() => run('readwrite', (store) => {
        const request = store.openCursor();
        request.onsuccess = () => {
            const cursor = request.result;
            if (!cursor) {
                return;
            }
            const r = cursor.value;
            const expires = Number.isFinite(r?.expires) ? r.expires
                : (Number.isFinite(r?.created) ? r.created + fallbackMs : 0);
            if (expires <= now) {
                cursor.delete();
            }
            cursor.continue();
        };
        return request;
    }));
}
