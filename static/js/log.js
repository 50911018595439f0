// The conversation as this browser has opened it: decrypted entries in event order, grouped
// by question. Pure data, no DOM, no crypto, no I/O; the controller feeds it.

/** Event types decided by the flow rules (they move the conversation on). */
export const FLOW_TYPES = new Set([
    'answer', 'reflect', 'confirm_heard', 'add', 'pass', 'pause', 'resume', 'end', 'reveal',
    'go_on', 'stay_here',
]);

/** Event types whose ciphertext this client seals and opens: everything a person writes,
 *  control steps included (only the key exchange, key and confirm, is not sealed). */
export const SEALED_TYPES = new Set([
    'answer', 'reflect', 'add', 'note', 'pass', 'confirm_heard', 'pause', 'resume', 'end',
    'go_on', 'stay_here', 'consent', 'decline', 'withdraw',
]);

/** A fresh, empty log. */
export function newLog() {
    return {
        entries: [],               /* {key, seq, type, role, question, text, counter, unreadable} */
        seen: { A: new Map(), B: new Map() }, /* counter → ciphertext, per sender */
        seenSeq: { A: new Map(), B: new Map() }, /* counter → seq it was first seen at */
        revealed: new Map(),       /* question id → seq of its reveal event */
        maxOwnCounter: 0,
        lastFlowSeq: 0,            /* highest seq of a flow event received */
        lastSeq: 0,
    };
}

/** Add an entry (events arrive in seq order; entries keep it). */
export function addEntry(log, entry) {
    log.entries.push({ key: `e${entry.seq}-${entry.role}-${entry.type}`, ...entry });
}

/** Entries about one question, in order. */
export function thread(log, question) {
    return log.entries.filter((e) => e.question === question);
}

/** Question ids in the order the conversation reached them. */
export function questionsSeen(log) {
    const ids = [];
    for (const e of log.entries) {
        if (e.question && !ids.includes(e.question)) {
            ids.push(e.question);
        }
    }
    return ids;
}

/** The notes, in order. */
export function notes(log) {
    return log.entries.filter((e) => e.type === 'note');
}

/**
 * Was this (sender, counter) opened before? 'new', 'duplicate' (same ciphertext: a harmless
 * retransmission) or 'conflict' (another ciphertext under a used counter: a replay/forgery).
 */
export function counterStatus(log, sender, counter, ciphertext) {
    const previous = log.seen[sender].get(counter);
    if (previous === undefined) {
        return 'new';
    }
    return previous === ciphertext ? 'duplicate' : 'conflict';
}

/** Remember an opened (sender, counter), and the seq it came with (if it had one). */
export function markSeen(log, sender, counter, ciphertext, mine, seq) {
    log.seen[sender].set(counter, ciphertext);
    if (seq !== undefined) {
        log.seenSeq[sender].set(counter, seq);
    }
    if (mine && counter > log.maxOwnCounter) {
        log.maxOwnCounter = counter;
    }
}

/**
 * How many of `sender`'s counters below the highest one opened never arrived. Counters are
 * 1, 2, 3, … per sender, so each missing one is a message that was refused, lost or held
 * back (docs/crypto.md §7).
 */
export function counterGaps(log, sender) {
    let max = 0;
    for (const counter of log.seen[sender].keys()) {
        max = Math.max(max, counter);
    }
    return max - log.seen[sender].size;
}

/**
 * Where each question began, in counters: a reveal releases answers written privately
 * after the previous question ended, so each must be above its sender's last counter at
 * that point (docs/crypto.md §7). Fed by noteQuestion after every opened event that names
 * a question; read by revealFloor.
 */
export function newFloors() {
    return { lastQ: null, lastSnap: { A: 0, B: 0 }, prevSnap: { A: 0, B: 0 } };
}

/** After an opened event about `question`: `snapshot` is the guard's {A, B} now. */
export function noteQuestion(floors, question, snapshot) {
    if (floors.lastQ !== question) {
        floors.prevSnap = floors.lastSnap;
        floors.lastQ = question;
    }
    floors.lastSnap = { A: snapshot.A, B: snapshot.B };
}

/** Each sender's last counter before `question` began: its reveal's answers must be above. */
export function revealFloor(floors, question) {
    return floors.lastQ === question ? floors.prevSnap : floors.lastSnap;
}
