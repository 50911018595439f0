// The workshop-mode key exchange with a commitment and its 6-digit safety code
// (docs/crypto.md §5a). Pure: no DOM, no network. room.js feeds it the `commit` and `key`
// events of the stream and sends what `due()` says; the view shows `code()` and asks the
// person to compare it aloud.
//
// Why this order: in a workshop nobody shares a secret out of band, so a server in the
// middle could show each partner a key of its own. A commits to its key before B sends
// B's; A reveals its key only after B's arrived, and B checks it against the commitment
// it saw first. The server then has to fix both fake keys before it learns the real ones,
// and a 6-digit code matches by chance once in a million: a visible failure, not a search.
//
// Rule of the page (not the server's): nothing is sealed or sent before this browser's
// person said the two codes are the same (`record.codeConfirmed === true`).

import { keyCommitment, shortSafetyCode } from './crypto.js';

const sameBytes = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * The state of the exchange, kept in the room record so a reload resumes it:
 *   record.commitSent         A: the server stored A's `commit`
 *   record.partnerCommitment  B: A's commitment as first received (32 bytes), pinned
 *   record.keySent            the server stored our `key` (as in link mode)
 *   record.partnerKey         the partner's key once accepted (as in link mode)
 *   record.codeConfirmed      true after "Yes, same code", false after "No"
 */
export class WorkshopKeying {
    /** roomId: the room; record: the IndexedDB record (role, keyPair, and the fields above). */
    constructor(roomId, record) {
        this.roomId = roomId;
        this.record = record;
        this.role = record.role;
        this.partner = record.role === 'A' ? 'B' : 'A';
        /* B's key as seen on the stream this visit (A waits for it before revealing). */
        this.partnerKey = record.partnerKey ?? null;
        /* A's own commitment seen back on the stream (a reload sees it again). */
        this.ownCommitSeen = record.commitSent === true;
    }

    /** A's commitment to its own key (sent as `commit`). */
    ownCommitment() {
        return keyCommitment(this.roomId, this.record.keyPair.publicKey);
    }

    /**
     * A `commit` event from `role` with `commitment` (bytes). Returns null when fine, else a
     * tamper reason: 'ownKey' (our commitment shown back changed), 'commitment' (a second,
     * different commitment from A, or one from B, who never commits).
     */
    onCommit(role, commitment) {
        if (role === this.role) {
            if (this.role !== 'A' || !sameBytes(commitment, this.ownCommitment())) {
                return 'ownKey';
            }
            this.ownCommitSeen = true;
            return null;
        }
        if (role !== 'A') {
            return 'commitment';
        }
        const pinned = this.record.partnerCommitment;
        if (pinned && !sameBytes(pinned, commitment)) {
            return 'commitment';
        }
        this.record.partnerCommitment = commitment;
        return null;
    }

    /**
     * A `key` event from `role` with `publicKey` (bytes). Returns null when the key is
     * accepted (then `this.partnerKey` is set), else a tamper reason: 'ownKey',
     * 'partnerKeyChanged' (another key than the one accepted before), 'order' (A's key
     * before A's commitment: B cannot check it), 'commitment' (A's key does not hash to
     * the commitment B received first).
     */
    onKey(role, publicKey) {
        if (role === this.role) {
            return sameBytes(publicKey, this.record.keyPair.publicKey) ? null : 'ownKey';
        }
        if (this.partnerKey) {
            return sameBytes(this.partnerKey, publicKey) ? null : 'partnerKeyChanged';
        }
        if (this.role === 'B') {
            const commitment = this.record.partnerCommitment;
            if (!commitment) {
                return 'order';
            }
            if (!sameBytes(keyCommitment(this.roomId, publicKey), commitment)) {
                return 'commitment';
            }
        }
        this.partnerKey = publicKey;
        return null;
    }

    /**
     * What this browser may send now: 'commit', 'key', or null (wait). A commits first and
     * reveals its key only once B's key is in; B sends its key only once A's commitment is
     * in. Each is sent once (the record says what was sent).
     */
    due() {
        const { record } = this;
        if (this.role === 'A') {
            if (!record.commitSent) {
                return 'commit';
            }
            if (!record.keySent && this.ownCommitSeen && this.partnerKey) {
                return 'key';
            }
            return null;
        }
        if (!record.keySent && record.partnerCommitment) {
            return 'key';
        }
        return null;
    }

    /** Both public keys in A,B order, or null while one is missing. */
    keys() {
        if (!this.partnerKey) {
            return null;
        }
        const mine = this.record.keyPair.publicKey;
        return this.role === 'A' ? { A: mine, B: this.partnerKey } : { A: this.partnerKey, B: mine };
    }

    /** The 6-digit code once both keys are known, else null. */
    code() {
        const keys = this.keys();
        return keys ? shortSafetyCode(this.roomId, keys.A, keys.B) : null;
    }
}

/** "028953" → "028 953": easier to read aloud and to compare. */
export function groupCode(code) {
    return code ? `${code.slice(0, 3)} ${code.slice(3)}` : '';
}
