// Browser tests of the thou client: real thou, real Chromium (Debian's, via playwright-core).
//
//   THOU_BIN=build/thou node tests/browser/run.mjs [name-filter]
//
// Starts its own thou on an ephemeral port with a temporary data dir (log in that dir),
// runs every test in fresh browser contexts, stops thou, prints "N passed, M failed" and
// exits non-zero on any failure. Screenshots go to tests/browser/artifacts/.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
    Server, launchBrowser, newPage, waitScreen, until, check, fail, shots, entryTexts,
    repoRoot, artifactsDir, DESKTOP, PHONE, dumpOpenPages,
} from './harness.mjs';
import {
    marker, createConversation, openLink, pair, compose, pass, confirmHeard, notQuite, seeEntry,
    composeForm, erase, goOn, welcomed,
} from './conversation.mjs';
import {
    forgedControl, replayedEvent, tamperedSet, joinRetried, expiredSwept, keysPinned, readRecord,
} from './integrity.mjs';
import { COUPLE_TESTS } from './couple.mjs';
import { RESEARCH_TESTS } from './research.mjs';
import { SEAT_TESTS } from './seat.mjs';
import { WORKSHOP_TESTS } from './workshop.mjs';

const TEXTS = {
    roomFull: 'This conversation already has two people',
    missing: 'This link is incomplete',
    malformed: 'This link is damaged',
    unknown: 'There is no conversation here',
    gone: 'This conversation is gone',
    tamper: 'This conversation may have been tampered with',
    unreadable: 'This message could not be opened',
};

const shared = { markers: [], secrets: [] };

/* ---------------------------------------------------------------- tests */

async function completeConversation({ browser, server }) {
    const problems = [];
    const { a, b, secret } = await pair(browser, server, { shoot: true, problems });
    shared.secrets.push(secret);
    const page = { A: a, B: b };
    const other = (r) => (r === 'A' ? 'B' : 'A');
    const written = []; /* {text, author} */

    const say = async (role, kind, label, { seenByPartner = true } = {}) => {
        const text = marker(label);
        shared.markers.push(text);
        written.push({ text, author: role });
        await compose(page[role], kind, text);
        await seeEntry(page[role], text);
        if (seenByPartner) {
            await seeEntry(page[other(role)], text);
        }
        return text;
    };
    /* One normal half: speaker answers, listener reflects, speaker confirms. */
    const half = async (speaker, q, { add = false, shoot = false } = {}) => {
        const listener = other(speaker);
        if (shoot) {
            await composeForm(page[speaker], 'answer').waitFor();
            await page[speaker].getByTestId('compose-input').fill('(typing…)');
            await shots(page[speaker], '04-question');
            await page[speaker].getByTestId('compose-input').fill('');
        }
        await say(speaker, 'answer', `${q} answer by ${speaker}`);
        check(await page[listener].getByTestId('hint').isVisible(),
            'the listener sees the hint');
        /* Checked as the answer arrives: the region keeps only the last few lines. */
        check((await page[listener].locator('[data-live]').textContent())
            .includes('Your partner answered'), 'arriving answers are announced to screen readers');
        if (shoot) {
            await composeForm(page[listener], 'reflect').waitFor();
            await shots(page[listener], '05-listening');
        }
        await say(listener, 'reflect', `${q} heard by ${listener}`);
        if (add) {
            await page[speaker].getByTestId('confirm-heard-button').waitFor();
            if (shoot) {
                await shots(page[speaker], '06-confirm');
            }
            const added = marker(`${q} added by ${speaker}`);
            shared.markers.push(added);
            written.push({ text: added, author: speaker });
            await notQuite(page[speaker], added);
            await seeEntry(page[speaker], added);
            await seeEntry(page[listener], added);
            await say(listener, 'reflect', `${q} heard again by ${listener}`);
        }
        await page[speaker].getByTestId('confirm-heard-button').waitFor();
        await confirmHeard(page[speaker]);
    };
    const passHalf = async (speaker) => {
        await pass(page[speaker], 'answer');
    };

    /* q0 cg-good-moment: A opens; one "not quite". */
    await half('A', 'q0', { add: true, shoot: true });
    await half('B', 'q0');
    /* a note each way */
    const noteA = marker('note from A');
    shared.markers.push(noteA);
    await a.getByTestId('note-input').fill(noteA);
    await a.getByTestId('note-send').click();
    await seeEntry(b, noteA);
    /* each new stage opens when both chose to go on */
    await goOn(a, b);
    /* q1 precious-feel-yourself: B opens and passes. */
    await passHalf('B');
    await half('A', 'q1');
    /* q2 me-always-there: A opens and passes. */
    await passHalf('A');
    await half('B', 'q2');
    /* q3 differ-matters-to-other: reveal together. */
    await goOn(a, b);
    await composeForm(a, 'answer').waitFor();
    await composeForm(b, 'answer').waitFor();
    const revealA = await say('A', 'answer', 'q3 private by A', { seenByPartner: false });
    await b.waitForTimeout(300);
    check(!(await b.content()).includes(revealA), 'a private answer stays hidden until both wrote');
    const revealB = await say('B', 'answer', 'q3 private by B', { seenByPartner: false });
    for (const [p, mine, theirs] of [[a, revealA, revealB], [b, revealB, revealA]]) {
        await p.getByTestId('reveal').waitFor();
        check((await entryTexts(p.getByTestId('reveal-mine'))).includes(mine), 'reveal: mine');
        check((await entryTexts(p.getByTestId('reveal-partner'))).includes(theirs),
            'reveal: partner');
        check((await p.getByTestId('reveal-note').textContent()).includes('what matters to them'),
            'reveal invites a question, not agreement');
    }
    await composeForm(a, 'reflect').waitFor();
    await shots(a, '07-reveal');
    await say('A', 'reflect', 'q3 seen by A');
    await say('B', 'reflect', 'q3 seen by B');
    /* both read both reflections before the next question is shown */
    for (const p of [a, b]) {
        await p.getByTestId('both-saw').waitFor();
        await p.getByTestId('both-saw-next').click();
    }
    /* q4..q6: the question with global index k is opened by A when k is even */
    await half('A', 'q4');
    await half('B', 'q4');
    await goOn(a, b);
    await half('B', 'q5');
    await half('A', 'q5');
    await half('A', 'q6');
    await half('B', 'q6');

    await waitScreen(a, 'ended');
    await waitScreen(b, 'ended');
    await shots(b, '08-ended');
    for (const p of [a, b]) {
        const texts = await entryTexts(p.getByTestId('history'));
        const notes = await entryTexts(p.getByTestId('notes'));
        for (const { text } of written) {
            check(texts.includes(text), `both pages show "${text}"`);
        }
        check(notes.includes(noteA), 'the note is on both pages');
        const passes = await p.locator('[data-testid=entry][data-type=pass]').count();
        check(passes === 2, `two passes are shown (saw ${passes})`);
    }
    check(problems.length === 0, problems.join('\n'));
    await a.context().close();
    await b.context().close();
}

async function nothingInPlaintext({ server }) {
    check(shared.markers.length > 20, 'the conversation test typed its markers');
    const files = ['thou.db', 'thou.db-wal', 'thou.db-journal']
        .map((f) => join(server.dataDir, f)).filter((f) => existsSync(f));
    files.push(server.logPath);
    for (const file of files) {
        const bytes = readFileSync(file);
        for (const text of shared.markers) {
            const token = text.split(' ').at(-1);
            check(!bytes.includes(Buffer.from(text)) && !bytes.includes(Buffer.from(token)),
                `"${text}" appears in ${file}`);
        }
        for (const secret of shared.secrets) {
            check(!bytes.includes(Buffer.from(secret)), `the room secret appears in ${file}`);
        }
    }
}

async function reloadResumes({ browser, server }) {
    const problems = [];
    const { a, b, link } = await pair(browser, server, { problems });
    shared.resumeLink = link;
    const t = {
        a0: marker('r0 answer A'), b0: marker('r0 heard B'), b1: marker('r0 answer B'),
        a1: marker('r0 heard A'), b2: marker('r1 answer B'), a2: marker('r1 heard A'),
    };
    await compose(a, 'answer', t.a0);
    await compose(b, 'reflect', t.b0);
    await confirmHeard(a);
    await compose(b, 'answer', t.b1);
    await compose(a, 'reflect', t.a1);
    await confirmHeard(b);
    await goOn(a, b); /* the second stage opens when both chose to go on */
    await compose(b, 'answer', t.b2);
    await compose(a, 'reflect', t.a2);
    await b.getByTestId('confirm-heard-button').waitFor();
    const questionBefore = await b.getByTestId('question-text').textContent();

    await b.reload();
    await waitScreen(b, 'talk');
    await b.getByTestId('confirm-heard-button').waitFor();
    check(await b.getByTestId('question-text').textContent() === questionBefore,
        'same question after reload');
    /* the log is replayed and opened after the first paint: wait for it, then compare */
    await until(async () => {
        const current = await entryTexts(b.getByTestId('thread'));
        return current.includes(t.b2) && current.includes(t.a2);
    }, 'the current thread intact after reload');
    const history = await entryTexts(b.getByTestId('history'));
    for (const x of [t.a0, t.b0, t.b1, t.a1]) {
        check(history.includes(x), `history has "${x}" after reload`);
    }
    /* and it carries on */
    await confirmHeard(b);
    const next = marker('r1 answer A');
    await compose(a, 'answer', next);
    await seeEntry(b, next);
    /* reloading A too: its own sealed answers open again with its own key */
    await a.reload();
    await waitScreen(a, 'talk');
    await seeEntry(a, next);
    check((await entryTexts(a.getByTestId('history'))).includes(t.a0), 'A history after reload');
    check(problems.length === 0, problems.join('\n'));
    await a.context().close();
    await b.context().close();
}

async function thirdIsRefused({ browser }) {
    check(shared.resumeLink, 'needs the room of the reload test');
    const c = await openLink(browser, shared.resumeLink);
    await waitScreen(c, 'error');
    const title = await c.getByTestId('error-title').textContent();
    check(title.includes(TEXTS.roomFull), `third person sees "${TEXTS.roomFull}", got "${title}"`);
    check(await c.getByTestId('start-link').isVisible(), 'with a way forward');
    await c.context().close();
}

async function offlineNothingLost({ browser, server }) {
    const problems = [];
    const { a, b } = await pair(browser, server, { problems });
    const text = marker('offline answer A');
    await composeForm(a, 'answer').waitFor();
    await a.context().setOffline(true);
    await compose(a, 'answer', text);
    const mine = a.locator('[data-testid=entry][data-who=me]').filter({ hasText: text });
    await mine.waitFor();
    const seenStates = new Set();
    for (let i = 0; i < 15; i++) {
        seenStates.add(await mine.getAttribute('data-state'));
        await a.waitForTimeout(150);
    }
    check(seenStates.size === 1 && seenStates.has('sending'),
        `shown as sending while offline (saw ${[...seenStates]})`);
    check((await mine.getByTestId('entry-state').textContent()).includes('Sending'),
        'says "Sending…"');
    check(!(await b.content()).includes(text), 'the partner has not got it yet');
    await shots(a, '11-offline-sending');
    await a.context().setOffline(false);
    await seeEntry(b, text, 30000);
    await until(async () => (await mine.getAttribute('data-state')) === 'sent', 'sent state', 30000);
    /* and the conversation goes on */
    const heard = marker('offline heard B');
    await compose(b, 'reflect', heard);
    await seeEntry(a, heard);
    /* a queued message survives a reload: it is sealed in IndexedDB and sent afterwards */
    await a.getByTestId('confirm-heard-button').click();
    const queued = marker('queued answer B');
    await b.context().route('**/events', (route) => (route.request().method() === 'POST'
        ? route.abort('internetdisconnected') : route.fallback()));
    await compose(b, 'answer', queued);
    await b.reload();
    await waitScreen(b, 'talk');
    const pending = b.locator('[data-testid=entry][data-who=me]').filter({ hasText: queued });
    await pending.waitFor();
    check(await pending.getAttribute('data-state') === 'sending',
        'after a reload the queued answer is still shown as sending');
    check(!(await a.content()).includes(queued), 'and the partner has not got it');
    await b.context().unroute('**/events');
    await b.evaluate(() => window.dispatchEvent(new Event('online')));
    await seeEntry(a, queued, 30000);
    /* erasing from the conversation: the partner learns it is gone */
    await erase(a);
    await waitScreen(a, 'erased');
    await waitScreen(b, 'error', 30000);
    check((await b.getByTestId('error-title').textContent()).includes(TEXTS.gone),
        'the partner sees that the conversation is gone');
    check(problems.length === 0, problems.join('\n'));
    await a.context().close();
    await b.context().close();
}

async function badLinks({ browser, server }) {
    const { page: a, roomId, link } = await createConversation(browser, server);
    const expectError = async (url, text, shotName) => {
        const p = await newPage(browser, PHONE);
        await p.goto(url);
        await waitScreen(p, 'error');
        const title = await p.getByTestId('error-title').textContent();
        check(title.includes(text), `${url}: expected "${text}", got "${title}"`);
        check((await p.getByTestId('error-message').textContent()).length > 20, 'with an explanation');
        check(await p.getByTestId('start-link').isVisible(), 'with a link to the start page');
        check(!p.url().includes('#'), 'fragment removed even on error');
        if (shotName) {
            await shots(p, shotName);
        }
        check(p.problems.length === 0, p.problems.join('\n'));
        await p.context().close();
    };
    await expectError(`${server.base}/r/${roomId}`, TEXTS.missing, '09-error');
    await expectError(`${server.base}/r/${roomId}#not-a-key!`, TEXTS.malformed);
    await expectError(`${server.base}/r/${roomId}#AAAA`, TEXTS.malformed);
    const secret = link.split('#')[1];
    await expectError(`${server.base}/r/AAAAAAAAAAAAAAAAAAAAAA#${secret}`, TEXTS.unknown);
    /* erase while waiting, then the link is gone */
    await erase(a);
    await waitScreen(a, 'erased');
    await expectError(link, TEXTS.gone);
    await a.context().close();
}

async function pauseResumeEnd({ browser, server }) {
    const problems = [];
    const { a, b } = await pair(browser, server, { problems });
    await composeForm(a, 'answer').waitFor();
    await b.getByTestId('pause-button').click();
    await a.getByTestId('paused').waitFor();
    await b.getByTestId('paused').waitFor();
    check(await a.getByTestId('compose-input').count() === 0, 'no answer box while paused');
    /* notes still go through while paused */
    const note = marker('paused note B');
    await b.getByTestId('note-input').fill(note);
    await b.getByTestId('note-input').press('Enter');
    await seeEntry(a, note);
    await b.getByTestId('resume-button').click();
    await composeForm(a, 'answer').waitFor();
    await a.getByTestId('end-button').click();
    await a.getByTestId('end-confirm-no').click();
    await a.getByTestId('end-button').click();
    await a.getByTestId('end-confirm-yes').click();
    await waitScreen(a, 'ended');
    await waitScreen(b, 'ended');
    check((await b.getByTestId('ended').textContent()).includes('ended the conversation'),
        'an early end is named kindly');
    check(problems.length === 0, problems.join('\n'));
    await a.context().close();
    await b.context().close();
}

async function serverTrouble({ browser, server }) {
    /* start page: a 500 on create, then it works */
    const a = await newPage(browser, PHONE);
    await a.goto(`${server.base}/`);
    await a.route('**/api/rooms', (route) => route.fulfill({ status: 500,
        contentType: 'application/json',
        body: '{"error":{"code":"internal","message":"boom"}}' }));
    await a.getByTestId('create-button').click();
    await a.getByTestId('start-error').waitFor();
    check((await a.getByTestId('start-error').textContent()).includes('could not be created'),
        'create failure is explained');
    await a.unroute('**/api/rooms');
    await a.getByTestId('create-button').click();
    const link = await a.getByTestId('room-link').inputValue();
    await a.getByTestId('enter-link').click();
    await waitScreen(a, 'waiting');

    /* joining: 429, then retry works */
    const b = await newPage(browser, DESKTOP);
    await b.route('**/join', (route) => route.fulfill({ status: 429,
        headers: { 'Retry-After': '1' }, contentType: 'application/json',
        body: '{"error":{"code":"rate_limited","message":"slow down"}}' }));
    await b.goto(link);
    await waitScreen(b, 'error');
    check((await b.getByTestId('error-title').textContent()).includes('Too many tries'),
        '429 on join is explained');
    await b.unroute('**/join');
    await b.getByTestId('retry-button').click();
    await welcomed(b);
    await waitScreen(a, 'talk');

    /* posting: two 503s, then the real server; shown as sending until it is stored */
    let failures = 0;
    await a.route('**/events', async (route) => {
        if (route.request().method() === 'POST' && failures < 2) {
            failures += 1;
            await route.fulfill({ status: 503, contentType: 'application/json',
                body: '{"error":{"code":"unavailable","message":"try later"}}' });
            return;
        }
        await route.fallback();
    });
    const text = marker('retried answer A');
    await compose(a, 'answer', text);
    const state = await a.locator('[data-testid=entry][data-who=me]').getAttribute('data-state');
    check(state === 'sending', `shown as sending while the server fails (was ${state})`);
    await seeEntry(b, text, 20000);
    check(failures === 2, 'the server errors were retried');
    for (const p of [a, b]) {
        check(p.problems.length === 0, p.problems.join('\n'));
        await p.context().close();
    }
}

async function sseParser() {
    const { SseParser } = await import(resolve(repoRoot, 'static/js/sse.js'));
    const p = new SseParser();
    const events = [
        ...p.feed('retry: 2000\r\n\r\n: heartbeat\n\nid: 1\nevent: key\ndata: {"a"'),
        ...p.feed(':1}\n\nevent: presence\r'),
        ...p.feed('\ndata: x\ndata: y\r\n\r'),
        ...p.feed('\nid: 2\ndata:z\n\n'),
    ];
    const want = [
        { id: '1', event: 'key', data: '{"a":1}' },
        { id: null, event: 'presence', data: 'x\ny' },
        { id: '2', event: 'message', data: 'z' },
    ];
    check(JSON.stringify(events) === JSON.stringify(want), `parsed ${JSON.stringify(events)}`);
}

async function keyboardOnly({ browser, server }) {
    const a = await newPage(browser, DESKTOP);
    await a.goto(`${server.base}/`);
    await a.getByTestId('set-option').first().waitFor();
    const tabTo = async (page, testid, limit = 40) => {
        for (let i = 0; i < limit; i++) {
            await page.keyboard.press('Tab');
            const at = await page.evaluate(() => document.activeElement?.dataset?.testid ?? '');
            if (at === testid) {
                const outline = await page.evaluate(() => getComputedStyle(document.activeElement)
                    .outlineStyle);
                check(outline !== 'none', `${testid} shows where the focus is`);
                return;
            }
        }
        fail(`cannot reach ${testid} with Tab`);
    };
    await tabTo(a, 'create-button');
    await a.keyboard.press('Enter');
    const link = await a.getByTestId('room-link').inputValue();
    await tabTo(a, 'enter-link');
    await a.keyboard.press('Enter');
    await waitScreen(a, 'waiting');
    const b = await openLink(browser, link);
    await waitScreen(a, 'talk');
    /* B is welcomed first, and begins with the keyboard too */
    await waitScreen(b, 'welcome');
    await tabTo(b, 'welcome-begin');
    await b.keyboard.press('Enter');
    await waitScreen(b, 'talk');
    /* it is A's turn: the answer box is where the keyboard is, or one Tab away */
    await tabTo(a, 'compose-input');
    const text = marker('keyboard answer A');
    await a.keyboard.type(text);
    await tabTo(a, 'compose-send', 3);
    await a.keyboard.press('Enter');
    await seeEntry(b, text);
    /* 200 % zoom on a 1280 × 800 screen is a 640 × 400 viewport */
    await b.setViewportSize({ width: 640, height: 400 });
    await tabTo(b, 'compose-input');
    await b.keyboard.type(marker('keyboard heard B'));
    await tabTo(b, 'compose-send', 3);
    await b.keyboard.press('Enter');
    await a.getByTestId('confirm-heard-button').waitFor();
    const overflow = await b.evaluate(() => document.documentElement.scrollWidth
        - document.documentElement.clientWidth);
    check(overflow <= 0, 'no sideways scrolling at 200 % zoom');
    await b.screenshot({ path: join(artifactsDir, '12-zoom200-640x400.png'), fullPage: true });
    for (const p of [a, b]) {
        check(p.problems.length === 0, p.problems.join('\n'));
        await p.context().close();
    }
}

/* B's key confirmation is altered on its way to the server (one bit of its MAC), as a
 * server in the middle could do: A must refuse the conversation, now and after a reload. */
async function badConfirmationRefused({ browser, server }) {
    const problems = [];
    const { page: a, link } = await createConversation(browser, server, { problems });
    const b = await newPage(browser, PHONE, problems);
    let altered = 0;
    await b.route('**/api/rooms/*/events', async (route) => {
        const request = route.request();
        const body = request.method() === 'POST' ? request.postDataJSON() : null;
        if (body?.type !== 'confirm') {
            await route.continue();
            return;
        }
        const mac = Buffer.from(body.mac, 'base64url');
        check(mac.length === 32, `a confirmation MAC of 32 bytes: ${body.mac}`);
        mac[mac.length - 1] ^= 0x01;
        altered += 1;
        await route.continue({
            postData: JSON.stringify({ ...body, mac: mac.toString('base64url') }),
        });
    });
    await b.goto(link);

    const warning = a.getByTestId('tamper-warning');
    for (const when of ['live', 'after a reload']) {
        await warning.waitFor();
        check((await warning.textContent()).includes(TEXTS.tamper), `A is warned (${when})`);
        check(await warning.getAttribute('data-reason') === 'confirm',
            `because the partner's confirmation failed (${when})`);
        check(await a.getByTestId('compose-input').count() === 0, `A cannot write (${when})`);
        check(await a.locator('main[data-screen="talk"]').count() === 0,
            `A never reaches the conversation (${when})`);
        if (when === 'live') {
            await a.reload();
        }
    }
    check(altered === 1, `B's confirmation was altered once (${altered})`);
    check(problems.length === 0, problems.join('\n'));
    for (const p of [a, b]) {
        await p.context().close();
    }
}

/* Last: restarts the server on the same port and data dir. */
async function tamperingRefused({ browser, server }) {
    const problems = [];
    const swap = await pair(browser, server, { problems });
    const cipher = await pair(browser, server, { problems });
    const secretAnswer = marker('tamper answer A');
    await compose(cipher.a, 'answer', secretAnswer);
    await seeEntry(cipher.b, secretAnswer);

    /* The truncation victim: B saw A's counters 1 (answer), 2 ("That's it") and 3
     * (reflection) live. */
    const trunc = await pair(browser, server, { problems });
    await compose(trunc.a, 'answer', marker('trunc answer A'));
    await compose(trunc.b, 'reflect', marker('trunc heard B'));
    await confirmHeard(trunc.a);
    await compose(trunc.b, 'answer', marker('trunc answer B'));
    await compose(trunc.a, 'reflect', marker('trunc heard A'));
    await until(async () => (await readRecord(trunc.b, trunc.roomId))?.highest?.A === 3,
        'B to persist the highest counter it opened from A');
    /* The early hand-over victim: A wrote privately on the reveal-together question. */
    const early = await pair(browser, server, { problems });
    for (let q = 0; q < 3; q++) {
        const [first, second] = q % 2 === 0 ? [early.a, early.b] : [early.b, early.a];
        await pass(first, 'answer');
        /* the second passes, and opens the next question itself: wait for its text */
        const before = await second.getByTestId('question-text').textContent();
        await composeForm(second, 'answer').getByTestId('pass-button').click();
        /* at a stage's end both choose to go on first */
        /* read in one go: at a gate the question text leaves the page */
        await until(() => second.evaluate((was) => Boolean(
            document.querySelector('[data-testid=vote]')
            || (document.querySelector('[data-testid=question-text]')?.textContent ?? was)
                !== was), before), 'the next question');
        if (await second.getByTestId('vote').count() > 0) {
            await goOn(early.a, early.b);
        }
    }
    const earlyA = marker('early private A');
    await compose(early.a, 'answer', earlyA);
    await until(async () => (await early.a.locator('[data-testid=entry][data-who=me]')
        .filter({ hasText: earlyA }).getAttribute('data-state')) === 'sent', 'A\'s answer stored');
    const set = await (await fetch(`${server.base}/api/sets/couples-short`)).json();
    check((await readRecord(swap.a, swap.roomId)).partnerKey?.length === 32,
        'A pinned B\'s key');

    await server.stop();
    const crypto = await import(resolve(repoRoot, 'static/js/crypto.js'));
    const { encodeB64, decodeB64 } = crypto;
    await crypto.ready();
    /* Someone who learnt the link later, with the server, makes a new key for B: its MAC
     * verifies with the link's secret and its confirmation is right for the new key. Only
     * the pin stops it. */
    const attacker = crypto.newKeyPair();
    const { macKey } = crypto.deriveRoomKeys(decodeB64(swap.secret, 32));
    const db = join(server.dataDir, 'thou.db');
    const sql = (q) => execFileSync('sqlite3', [db, q], { encoding: 'utf8' });
    const keyA = decodeB64(sql(`SELECT json_extract(data, '$.public_key') FROM events `
        + `WHERE type='key' AND sender='A' AND room_id='${swap.roomId}'`).trim(), 32);
    const session = crypto.sessionKeys('B', attacker, keyA);
    const setHash = crypto.questionSetHash(set);
    const otherKey = encodeB64(attacker.publicKey);
    const otherMac = encodeB64(crypto.macPublicKey(macKey, swap.roomId, 'B', attacker.publicKey));
    const otherConfirm = encodeB64(crypto.confirmationMac(session.confirmTx, swap.roomId, 'B',
        keyA, attacker.publicKey, setHash));
    sql(`UPDATE events SET data = json_set(data, '$.public_key', '${otherKey}', '$.mac', `
        + `'${otherMac}') WHERE type='key' AND sender='B' AND room_id='${swap.roomId}'`);
    sql(`UPDATE events SET data = json_set(data, '$.mac', '${otherConfirm}') `
        + `WHERE type='confirm' AND sender='B' AND room_id='${swap.roomId}'`);
    /* The server hands A's privately written answer to B before B wrote (visible to all). */
    sql(`UPDATE events SET visible_to = NULL WHERE room_id='${early.roomId}' `
        + `AND type='answer' AND sender='A'`);
    /* flip one character in the middle of A's answer ciphertext (still valid base64url) */
    const row = sql(`SELECT seq, json_extract(data, '$.ciphertext') FROM events `
        + `WHERE type='answer' AND sender='A' AND room_id='${cipher.roomId}'`).trim();
    const [seq, ct] = row.split('|');
    const i = Math.floor(ct.length / 2);
    const flipped = ct.slice(0, i) + (ct[i] === 'A' ? 'B' : 'A') + ct.slice(i + 1);
    sql(`UPDATE events SET data = json_set(data, '$.ciphertext', '${flipped}') `
        + `WHERE room_id='${cipher.roomId}' AND seq=${seq}`);
    /* Drop A's answer (a gap in A's counters) and the last event, A's reflection (the log
     * now ends below what B saw). */
    const last = Number(sql(`SELECT max(seq) FROM events WHERE room_id='${trunc.roomId}'`));
    sql(`DELETE FROM events WHERE room_id='${trunc.roomId}' AND (seq=${last} `
        + `OR (type='answer' AND sender='A'))`);
    await server.start();

    await swap.a.reload();
    await swap.a.getByTestId('tamper-warning').waitFor();
    check((await swap.a.getByTestId('tamper-warning').textContent()).includes(TEXTS.tamper),
        'A is warned of a swapped key');
    check(await swap.a.getByTestId('tamper-warning').getAttribute('data-reason')
        === 'partnerKeyChanged', 'because the partner key is not the pinned one');
    check(await swap.a.getByTestId('compose-input').count() === 0, 'and cannot write');
    await swap.b.reload();
    await swap.b.getByTestId('tamper-warning').waitFor();
    check(await swap.b.getByTestId('tamper-warning').getAttribute('data-reason') === 'ownKey',
        'B sees that the server shows another key as its own');
    await shots(swap.a, '10-tampered');

    await cipher.b.reload();
    await waitScreen(cipher.b, 'talk');
    await cipher.b.getByTestId('banner-unreadable').waitFor();
    check((await cipher.b.getByTestId('thread').textContent()).includes(TEXTS.unreadable),
        'a tampered answer is flagged, not shown');
    check(!(await cipher.b.content()).includes(secretAnswer), 'and its text is not shown');

    await trunc.b.reload();
    await waitScreen(trunc.b, 'talk');
    await trunc.b.getByTestId('banner-rollback').waitFor();
    await trunc.b.getByTestId('banner-gaps').waitFor();
    check((await trunc.b.getByTestId('banner-gaps').textContent()).includes('One message'),
        'one missing message from A is counted');
    await shots(trunc.b, '15-history-missing');

    /* B's browser keeps A's early answer back until B has written its own. */
    await early.b.reload();
    await composeForm(early.b, 'answer').waitFor();
    await early.b.waitForTimeout(800);
    check(!(await early.b.content()).includes(earlyA),
        'B does not see A\'s reveal-together answer before writing');
    const earlyB = marker('early private B');
    await compose(early.b, 'answer', earlyB);
    await early.b.getByTestId('reveal').waitFor();
    check((await entryTexts(early.b.getByTestId('reveal-partner'))).includes(earlyA),
        'and sees it side by side once written');
    check(problems.length === 0, problems.join('\n'));
    for (const p of [swap.a, swap.b, cipher.a, cipher.b, trunc.a, trunc.b, early.a, early.b]) {
        await p.context().close();
    }
}

/* A couple over HTTPS served by thou itself (a certificate made here): the pages load
 * under the CSP, the crypto runs, and both reach the private conversation. */
async function overHttps({ server: plain }) {
    const dir = mkdtempSync(join(tmpdir(), 'thou-tls-'));
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
        '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
        '-keyout', key, '-out', cert], { stdio: 'ignore' });
    const server = new Server({ bin: plain.bin, tls: { cert, key } });
    await server.start();
    const browser = await launchBrowser({ trustCertificates: true });
    try {
        check(server.base.startsWith('https://'), `served over ${server.base}`);
        const problems = [];
        const { a, b } = await pair(browser, server, { problems });
        check(a.url().startsWith('https://'), `the page is on ${a.url()}`);
        const start = await newPage(browser, DESKTOP, problems);
        const response = await start.goto(`${server.base}/`);
        check(response.headers()['strict-transport-security'] === 'max-age=63072000',
            'HSTS on the page');
        await start.context().close();
        const text = marker('over https');
        await compose(a, 'answer', text);
        await seeEntry(b, text);
        check(problems.length === 0, `no page problems: ${problems.join('; ')}`);
        await a.context().close();
        await b.context().close();
    } finally {
        await browser.close().catch(() => {});
        await server.stop();
        rmSync(server.workDir, { recursive: true, force: true });
        rmSync(dir, { recursive: true, force: true });
    }
}

const TESTS = [
    ['the SSE parser', sseParser],
    ['two people complete the short set', completeConversation],
    ['no typed answer reaches the database or the log', nothingInPlaintext],
    ['a reload resumes at the same step with history', reloadResumes],
    ['a third person is refused', thirdIsRefused],
    ['offline: queued, never shown as sent, nothing lost', offlineNothingLost],
    ['bad links get clear messages', badLinks],
    ['pause, carry on, end', pauseResumeEnd],
    ['server errors and rate limits are retried or explained', serverTrouble],
    ['keyboard only, and 200 % zoom', keyboardOnly],
    ['a forged control step is refused', forgedControl],
    ['an event replayed under a new seq is refused', replayedEvent],
    ['a tampered question set is refused', tamperedSet],
    ['a join whose answer was lost can be retried', joinRetried],
    ['expired room records are swept', expiredSwept],
    ['the partner key is pinned and the secret deleted', keysPinned],
    ['a partner confirmation with a bad MAC is refused', badConfirmationRefused],
    ['a swapped key, tampered answer or truncated history is caught', tamperingRefused],
    ['a couple over HTTPS', overHttps],
    ...COUPLE_TESTS,
    ...RESEARCH_TESTS,
    ...SEAT_TESTS,
    ...WORKSHOP_TESTS,
];

/* ---------------------------------------------------------------- runner */

async function main() {
    const bin = resolve(repoRoot, process.env.THOU_BIN ?? 'build/thou');
    if (!existsSync(bin)) {
        console.error(`no thou binary at ${bin}: build it, or set THOU_BIN`);
        process.exit(2);
    }
    if (!existsSync(join(repoRoot, 'static/vendor/libsodium-wrappers.mjs'))) {
        console.error('static/vendor/ is missing: run `npm ci && bash script/vendor-js`');
        process.exit(2);
    }
    const filter = process.argv[2];
    const server = new Server({ bin });
    await server.start();
    console.log(`thou on ${server.base}, data in ${server.workDir}`);
    const browser = await launchBrowser();
    let passed = 0;
    let failed = 0;
    const started = Date.now();
    try {
        for (const [name, fn] of TESTS) {
            if (filter && !name.includes(filter)) {
                continue;
            }
            const t0 = Date.now();
            try {
                await fn({ browser, server });
                passed += 1;
                console.log(`ok   ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
            } catch (error) {
                failed += 1;
                console.log(`FAIL ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n     ${
                    String(error?.stack ?? error).split('\n').slice(0, 6).join('\n     ')}`);
                await dumpOpenPages(name);
            }
        }
    } finally {
        await browser.close().catch(() => {});
        await server.stop();
    }
    console.log(`total ${((Date.now() - started) / 1000).toFixed(1)} s`);
    if (failed > 0 || process.env.THOU_BROWSER_KEEP) {
        console.log(`kept for inspection: ${server.workDir} (server log: ${server.logPath})`);
    } else {
        rmSync(server.workDir, { recursive: true, force: true });
    }
    console.log(`${passed} passed, ${failed} failed`);
    process.exit(failed === 0 ? 0 : 1);
}

main().catch((error) => {
    console.error(error);
    console.log('0 passed, 1 failed');
    process.exit(1);
});
