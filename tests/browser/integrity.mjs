// Browser tests of end-to-end integrity (docs/crypto.md): a server that forges, replays,
// drops or rewrites must be caught by the partners' browsers. The "server" here is the test
// itself, acting with the participants' own tokens over the real API, rewriting responses
// with page.route, or editing the database while thou is stopped.

import { resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { check, fail, until, waitScreen, repoRoot, shots, newPage, PHONE } from './harness.mjs';
import {
    marker, createConversation, pair, compose, seeEntry, welcomed,
} from './conversation.mjs';

const crypto = await import(resolve(repoRoot, 'static/js/crypto.js'));
const { SseParser } = await import(resolve(repoRoot, 'static/js/sse.js'));
await crypto.ready();

/** This browser's IndexedDB record of a room, bytes as plain arrays (or null). */
export function readRecord(page, roomId) {
    return page.evaluate((id) => new Promise((resolveRecord, reject) => {
        const open = indexedDB.open('thou');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
            const get = open.result.transaction('rooms').objectStore('rooms').get(id);
            get.onerror = () => reject(get.error);
            get.onsuccess = () => {
                const r = get.result;
                open.result.close();
                if (!r) {
                    resolveRecord(null);
                    return;
                }
                const plain = (v) => (v instanceof Uint8Array ? Array.from(v) : v);
                resolveRecord({
                    role: r.role, token: r.token, expires: r.expires, joining: r.joining,
                    hasSecret: 'secret' in r, secret: plain(r.secret),
                    partnerKey: plain(r.partnerKey), setHash: plain(r.setHash),
                    highest: r.highest, partnerConfirmed: r.partnerConfirmed,
                    privateKey: plain(r.keyPair?.privateKey),
                });
            };
        };
    }), roomId);
}

/** POST an event to the room as the holder of `token`; returns the response. */
async function postAs(server, roomId, token, body) {
    return fetch(`${server.base}/api/rooms/${roomId}/events`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
    });
}

/** The first stored event of the room matching `want`, read from the event stream. */
async function findEvent(server, roomId, token, want) {
    const abort = new AbortController();
    const response = await fetch(`${server.base}/api/rooms/${roomId}/events`, {
        headers: { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' },
        signal: abort.signal,
    });
    const reader = response.body.getReader();
    const parser = new SseParser();
    const deadline = Date.now() + 5000;
    try {
        while (Date.now() < deadline) {
            const { value, done } = await reader.read();
            if (done) {
                break;
            }
            for (const event of parser.feed(Buffer.from(value).toString('utf8'))) {
                const data = event.data ? JSON.parse(event.data) : null;
                if (data && want(event.event, data)) {
                    return data;
                }
            }
        }
    } finally {
        abort.abort();
    }
    return fail('the event was not found on the stream');
}

async function expectTamper(page, reason) {
    const warning = page.getByTestId('tamper-warning');
    await warning.waitFor();
    const got = await warning.getAttribute('data-reason');
    check(got === reason, `tamper reason is ${reason}, got ${got}`);
    check(await page.getByTestId('compose-input').count() === 0, 'and nothing can be written');
}

/** A forged control step (the server invents a "That's it") stops both browsers. */
export async function forgedControl({ browser, server }) {
    const { a, b, roomId } = await pair(browser, server);
    await compose(a, 'answer', marker('forged-control answer A'));
    await compose(b, 'reflect', marker('forged-control heard B'));
    await a.getByTestId('confirm-heard-button').waitFor();
    const recordA = await readRecord(a, roomId);
    /* A sealed-looking event under A's name that A's browser never wrote. */
    const forged = {
        type: 'confirm_heard', question: 'cg-good-moment',
        ciphertext: crypto.encodeB64(randomBytes(40 + 256)), counter: 9,
    };
    const response = await postAs(server, roomId, recordA.token, forged);
    check(response.status === 201, `the server stores the forgery (${response.status})`);
    await expectTamper(b, 'forged');
    check(!(await b.content()).includes('That’s it. You heard me.'),
        'B is not shown a "That’s it" A never sent');
    await expectTamper(a, 'forged');
    await shots(b, '13-forged-step');
    await a.context().close();
    await b.context().close();
}

/** An old step replayed under a new seq (a pause again) stops the conversation. */
export async function replayedEvent({ browser, server }) {
    const { a, b, roomId } = await pair(browser, server);
    await b.getByTestId('pause-button').click();
    await a.getByTestId('paused').waitFor();
    await b.getByTestId('resume-button').click();
    await a.getByTestId('compose-input').waitFor();
    const recordB = await readRecord(b, roomId);
    const pause = await findEvent(server, roomId, recordB.token,
        (type, data) => type === 'pause' && data.role === 'B');
    const response = await postAs(server, roomId, recordB.token,
        { type: 'pause', ciphertext: pause.ciphertext, counter: pause.counter });
    check(response.status === 201, `the server stores the replay (${response.status})`);
    await expectTamper(a, 'replayed');
    await a.context().close();
    await b.context().close();
}

/** Rewrite one question's wording in GET /api/sets/{id} answers to this page. */
async function tamperSet(page) {
    await page.route('**/api/sets/*', async (route) => {
        const response = await route.fetch();
        const set = await response.json();
        set.stages[0].questions[0].text = 'What do you regret most about us?';
        await route.fulfill({ response, json: set });
    });
}

/** Wording changed for one partner at the start, or for one after the set was pinned. */
export async function tamperedSet({ browser, server }) {
    /* B is shown other wording from the start: the key confirmations cannot agree. */
    const { page: a, link } = await createConversation(browser, server);
    const b = await newPage(browser, PHONE);
    await tamperSet(b);
    await b.goto(link);
    await expectTamper(b, 'confirm');
    await expectTamper(a, 'confirm');
    await a.context().close();
    await b.context().close();

    /* After the set is pinned, a reload with other wording is refused at once. */
    const pinned = await pair(browser, server);
    const first = await pinned.a.getByTestId('question-text').textContent();
    await tamperSet(pinned.a);
    await pinned.a.reload();
    await expectTamper(pinned.a, 'setChanged');
    check(!(await pinned.a.content()).includes('What do you regret most'),
        'the rewritten question is not shown');
    check(first.length > 0, 'the real question was shown before');
    await shots(pinned.a, '14-set-changed');
    await pinned.a.context().close();
    await pinned.b.context().close();
}

/** The answer to a join is lost: trying again gets the same seat back. */
export async function joinRetried({ browser, server }) {
    const { page: a, link, roomId } = await createConversation(browser, server);
    const b = await newPage(browser, PHONE);
    let joins = 0;
    await b.route('**/join', async (route) => {
        joins += 1;
        if (joins === 1) {
            await route.fetch(); /* the server admits B… */
            await route.abort('connectionreset'); /* …and the answer never arrives */
            return;
        }
        await route.fallback();
    });
    await b.goto(link);
    await waitScreen(b, 'error');
    const pending = await readRecord(b, roomId);
    check(pending?.joining === true, 'the record with the drawn token was saved before joining');
    await b.getByTestId('retry-button').click();
    await welcomed(b);
    await waitScreen(a, 'talk');
    check(joins === 2, `joined twice (${joins})`);
    const joined = await readRecord(b, roomId);
    check(joined.role === 'B' && joined.joining === undefined, 'B holds the seat');
    /* a reload after the lost answer (the record survived) joins again too */
    const text = marker('after retried join A');
    await compose(a, 'answer', text);
    await seeEntry(b, text);
    await a.context().close();
    await b.context().close();
}

/** Records of expired rooms are swept, with their keys, on every page load. */
export async function expiredSwept({ browser, server }) {
    const p = await newPage(browser, PHONE);
    await p.goto(`${server.base}/`);
    await p.getByTestId('set-option').first().waitFor();
    await p.evaluate(() => new Promise((resolveAll, reject) => {
        const open = indexedDB.open('thou');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
            const tx = open.result.transaction('rooms', 'readwrite');
            const rooms = tx.objectStore('rooms');
            const key = new Uint8Array(32).fill(1);
            rooms.put({ room: 'expiredAAAAAAAAAAAAAAA', v: 1, secret: key,
                keyPair: { publicKey: key, privateKey: key }, expires: Date.now() - 1000 });
            rooms.put({ room: 'oldAAAAAAAAAAAAAAAAAAA', v: 1, secret: key,
                created: Date.now() - 40 * 86400 * 1000 });
            rooms.put({ room: 'liveAAAAAAAAAAAAAAAAAA', v: 2, secret: key,
                expires: Date.now() + 86400 * 1000 });
            rooms.put({ room: 'thou1AAAAAAAAAAAAAAAAA', v: 1, secret: key, role: 'A',
                token: 'x', keyPair: { publicKey: key, privateKey: key },
                expires: Date.now() + 86400 * 1000 });
            tx.oncomplete = () => {
                open.result.close();
                resolveAll();
            };
        };
    }));
    await p.reload();
    await p.getByTestId('set-option').first().waitFor();
    await until(async () => (await readRecord(p, 'expiredAAAAAAAAAAAAAAA')) === null,
        'the expired record to be swept');
    check(await readRecord(p, 'oldAAAAAAAAAAAAAAAAAAA') === null,
        'a record past the default lifetime is swept');
    check(await readRecord(p, 'liveAAAAAAAAAAAAAAAAAA') !== null, 'a live record stays');
    /* A record of the earlier format is explained and forgotten, not shown as tampering. */
    await p.goto(`${server.base}/r/thou1AAAAAAAAAAAAAAAAA`);
    await waitScreen(p, 'error');
    check((await p.getByTestId('error-title').textContent()).includes('earlier version'),
        'an old record is explained');
    await until(async () => (await readRecord(p, 'thou1AAAAAAAAAAAAAAAAA')) === null,
        'the old record to be forgotten');
    await p.context().close();
}

/** After pairing: partner key pinned, secret gone, expiry known. */
export async function keysPinned({ browser, server }) {
    const { a, b, roomId } = await pair(browser, server);
    for (const [page, role] of [[a, 'A'], [b, 'B']]) {
        const record = await until(async () => {
            const r = await readRecord(page, roomId);
            return r && !r.hasSecret ? r : null;
        }, `${role}'s room secret to be deleted after confirmation`);
        check(record.partnerKey?.length === 32, `${role} pinned the partner key`);
        check(record.setHash?.length === 32, `${role} pinned the set hash`);
        check(record.partnerConfirmed === true, `${role} recorded the confirmation`);
        check(record.expires > Date.now() + 86400 * 1000, `${role} knows the room's expiry`);
    }
    /* and a reload without the secret still works */
    const text = marker('after pin A');
    await a.reload();
    await waitScreen(a, 'talk');
    await compose(a, 'answer', text);
    await seeEntry(b, text);
    await a.context().close();
    await b.context().close();
}
