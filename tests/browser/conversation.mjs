// Driving the conversation page like a person would: create, join, answer, reflect, pass.

import { randomBytes } from 'node:crypto';
import { newPage, waitScreen, shots, until, check, DESKTOP, PHONE } from './harness.mjs';

/** A unique marker string for a typed answer, easy to search for in raw bytes. */
export function marker(label) {
    return `${label} zq${randomBytes(6).toString('hex')}`;
}

/** Create a conversation on the start page; returns {page, link, roomId}. */
export async function createConversation(browser, server, { viewport = DESKTOP, shoot = false,
    problems } = {}) {
    const page = await newPage(browser, viewport, problems);
    await page.goto(`${server.base}/`);
    await page.getByTestId('set-option').first().waitFor();
    check(await page.locator('[data-testid=set-option][value=couples-short]').isChecked(),
        'the short couples set is preselected');
    if (shoot) {
        await shots(page, '01-start');
    }
    await page.getByTestId('create-button').click();
    const linkInput = page.getByTestId('room-link');
    await linkInput.waitFor();
    const link = await linkInput.inputValue();
    const match = /\/r\/([A-Za-z0-9_-]+)#([A-Za-z0-9_-]{43})$/.exec(link);
    check(match, `the link has the form /r/<room>#<secret>: ${link}`);
    if (shoot) {
        await shots(page, '02-link-ready');
    }
    await page.getByTestId('enter-link').click();
    await waitScreen(page, 'waiting');
    check(!page.url().includes('#'), 'no secret in the address bar after entering');
    if (shoot) {
        await shots(page, '03-waiting');
    }
    return { page, link, roomId: match[1], secret: match[2] };
}

/** Open a link in a fresh context (the partner). */
export async function openLink(browser, link, { viewport = PHONE, problems } = {}) {
    const page = await newPage(browser, viewport, problems);
    await page.goto(link);
    return page;
}

/** Two people in one private conversation: {a, b, link, roomId}. */
export async function pair(browser, server, options = {}) {
    const { page: a, link, roomId, secret } = await createConversation(browser, server, options);
    const b = await openLink(browser, link, options);
    await waitScreen(a, 'talk');
    await welcomed(b);
    check(!b.url().includes('#'), 'the fragment was removed from the address bar');
    const codeA = await a.getByTestId('safety-code').textContent();
    const codeB = await b.getByTestId('safety-code').textContent();
    check(/^\d{5}( \d{5}){5}$/.test(codeA), `safety code shape: ${codeA}`);
    check(codeA === codeB, 'both see the same safety code');
    return { a, b, link, roomId, secret };
}

export function composeForm(page, kind) {
    return page.locator(`[data-testid=compose][data-kind=${kind}]`);
}

/** Write `text` into the compose box of `kind` (answer, reflect, add) and send it. */
export async function compose(page, kind, text) {
    const form = composeForm(page, kind);
    await form.waitFor();
    await form.getByTestId('compose-input').fill(text);
    await form.getByTestId('compose-send').click();
    await form.waitFor({ state: 'detached' });
}

/** Pass at the step where `kind` would be written. */
export async function pass(page, kind) {
    const form = composeForm(page, kind);
    await form.waitFor();
    await form.getByTestId('pass-button').click();
    await form.waitFor({ state: 'detached' });
}

export async function confirmHeard(page) {
    const button = page.getByTestId('confirm-heard-button');
    await button.click();
    await button.waitFor({ state: 'detached' });
}

export async function notQuite(page, text) {
    await page.getByTestId('not-quite-button').click();
    await compose(page, 'add', text);
}

/** Wait until an entry with exactly `text` is on the page. */
export async function seeEntry(page, text, timeout) {
    await until(async () => (await page.locator('[data-testid=entry-text]').allTextContents())
        .includes(text), `entry "${text}"`, timeout);
}

/** Erase the conversation from `page`: the button, the box that says "for both of us" (once
 *  the partner has joined), yes. */
export async function erase(page) {
    await page.getByTestId('erase-button').click();
    const yes = page.getByTestId('erase-confirm-yes');
    await yes.waitFor();
    /* Once the partner is in, erasing is for both and needs the box; before, it is not. */
    if (await page.getByTestId('erase-sure').count() > 0) {
        check(await yes.isDisabled(), 'erasing needs the box ticked first');
        await page.getByTestId('erase-sure').check();
    }
    await yes.click();
}

/** At a stage gate, both choose to go on; the stage opens. */
export async function goOn(a, b) {
    for (const p of [a, b]) {
        await p.getByTestId('go-on-button').click();
    }
    for (const p of [a, b]) {
        await p.getByTestId('vote').waitFor({ state: 'detached' });
    }
}

/** The one who joins is welcomed first: read it, then Begin. */
export async function welcomed(page) {
    await waitScreen(page, 'welcome');
    await page.getByTestId('welcome-begin').click();
    await waitScreen(page, 'talk');
}
