// Your seat can follow you (issue 12, item 6): A carries the conversation to a second
// browser mid-conversation through the one-time link of "Continue on another device" and
// goes on there; the first browser says the conversation moved; the link opened again is
// refused clearly; the start page lists the conversation only where it now lives.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { newPage, waitScreen, check, until, repoRoot, artifactsDir } from './harness.mjs';
import {
    marker, pair, compose, composeForm, seeEntry, confirmHeard, createConversation, openLink,
    welcomed,
} from './conversation.mjs';

const PHONE390 = { width: 390, height: 844 };
const docsDir = process.env.THOU_DOC_SHOTS ? join(repoRoot, 'docs', 'screens') : artifactsDir;

async function docShot(page, name) {
    mkdirSync(docsDir, { recursive: true });
    await page.waitForTimeout(80);
    await page.screenshot({ path: join(docsDir, `${name}.png`) });
}

async function title(page) {
    return (await page.getByTestId('error-title').textContent()).trim();
}

/** Conversations the start page lists in this page's browser context. */
async function listed(page, base) {
    await page.goto(`${base}/`);
    await page.getByTestId('set-option').first().waitFor();
    await page.waitForTimeout(300); /* the list comes from IndexedDB just after the sets */
    return page.locator('[data-testid=my-room-open]').evaluateAll(
        (links) => links.map((l) => l.getAttribute('href')));
}

export async function seatFollows({ browser, server }) {
    const problems = [];
    const { a, b, roomId } = await pair(browser, server, { viewport: PHONE390, problems });
    const answer = marker('answered on the first phone');
    await compose(a, 'answer', answer);
    await seeEntry(b, answer);
    const heard = marker('heard on the other phone');
    await compose(b, 'reflect', heard);
    await seeEntry(a, heard);

    check(await a.getByTestId('move-link').count() === 0, 'the link is shown only on request');
    await a.getByTestId('move-show').click();
    const warning = await a.getByTestId('move-warning').textContent();
    check(warning.includes('as private as your conversation'), `the warning: ${warning}`);
    const modules = Number(await a.getByTestId('move-qr').getAttribute('data-modules'));
    check(modules >= 21, `a QR code is drawn (${modules} modules)`);
    const link = await a.getByTestId('move-link').inputValue();
    check(new RegExp(`/r/${roomId}#move\\.[A-Za-z0-9_-]+$`).test(link),
        `the link carries the seat in its fragment: ${link.slice(0, 60)}…`);
    await docShot(a, 'move-390x844');

    /* The second browser: the same person, same keys, the whole conversation readable. */
    const a2 = await newPage(browser, PHONE390, problems);
    await a2.goto(link);
    await waitScreen(a2, 'talk');
    check(!a2.url().includes('#'), 'the seat is not left in the address bar');
    await seeEntry(a2, answer);
    await seeEntry(a2, heard);

    /* The first browser learns it at once (its stream ends, its reconnect is refused). */
    await waitScreen(a, 'error');
    check(await title(a) === 'This conversation continues on another device',
        `the first browser says where it went: ${await title(a)}`);
    await docShot(a, 'moved-away-390x844');

    /* A goes on from the second browser; B's page accepts every step (no counter reused). */
    await confirmHeard(a2);
    await until(async () => (await composeForm(a2, 'answer').count())
        + (await composeForm(b, 'answer').count()) > 0, 'the next question opens');
    const next = marker('the next answer');
    const writer = (await composeForm(a2, 'answer').count()) > 0 ? a2 : b;
    await compose(writer, 'answer', next);
    await seeEntry(writer === a2 ? b : a2, next);
    const note = marker('a note from the second phone');
    await a2.getByTestId('note-input').fill(note);
    await a2.getByTestId('note-send').click();
    await seeEntry(b, note);
    check(await b.locator('main').getAttribute('data-screen') === 'talk',
        'B goes on, nothing refused as a replay');

    /* The link again, in a third browser: a clear refusal, nothing kept there. */
    const a3 = await newPage(browser, PHONE390, problems);
    await a3.goto(link);
    await waitScreen(a3, 'error');
    check(await title(a3) === 'This link to continue has been used already',
        `a used link says so: ${await title(a3)}`);
    await docShot(a3, 'move-used-390x844');
    check((await listed(a3, server.base)).length === 0, 'the refused browser keeps nothing');

    /* The start page lists the conversation where it lives now, not where it was. */
    check((await listed(a2, server.base)).includes(`/r/${roomId}`),
        'the second browser lists the conversation in progress');
    check(!(await listed(a, server.base)).includes(`/r/${roomId}`),
        'the first browser forgot it');
    await a2.getByTestId('my-room-open').first().click();
    await waitScreen(a2, 'talk');
    await seeEntry(a2, note);

    check(problems.length === 0, `no page errors: ${problems.join('; ')}`);
    for (const p of [a, a2, a3, b]) {
        await p.context().close();
    }
}

/** A moves while still waiting for B: the room secret goes along, B then joins the new A. */
export async function seatFollowsWhileWaiting({ browser, server }) {
    const problems = [];
    const { page: a, link, roomId } = await createConversation(browser, server,
        { viewport: PHONE390, problems });
    await a.getByTestId('move-show').click();
    const moveLink = await a.getByTestId('move-link').inputValue();
    check(moveLink.includes(`/r/${roomId}#move.`), 'the waiting page offers the move too');

    const a2 = await newPage(browser, PHONE390, problems);
    await a2.goto(moveLink);
    await waitScreen(a2, 'waiting');
    check(await a2.getByTestId('room-link').inputValue() === link,
        'the new browser shows the same link for the partner (it has the room secret)');
    await waitScreen(a, 'error');
    check(await title(a) === 'This conversation continues on another device',
        'the first browser says where it went');

    const b = await openLink(browser, link, { viewport: PHONE390, problems });
    await welcomed(b);
    await waitScreen(a2, 'talk');
    const codeA = await a2.getByTestId('safety-code').textContent();
    const codeB = await b.getByTestId('safety-code').textContent();
    check(codeA === codeB, 'B pairs with A on the new browser: the same safety code');
    const answer = marker('answered after moving while waiting');
    await compose(a2, 'answer', answer);
    await seeEntry(b, answer);
    check(problems.length === 0, `no page errors: ${problems.join('; ')}`);
    for (const p of [a, a2, b]) {
        await p.context().close();
    }
}

export const SEAT_TESTS = [
    ['phone: your seat can follow you to another device', seatFollows],
    ['phone: your seat can follow you while you wait for your partner', seatFollowsWhileWaiting],
];
