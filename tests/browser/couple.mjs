// The couple's evening at phone size (390×844, two contexts): stage votes, whose pause it
// is, erasing kept apart from End, the first screen, the welcome, the indicator, drafts,
// something to keep. Each new screen is shot at 390×844 into tests/browser/artifacts/, or
// with THOU_DOC_SHOTS=1 into docs/screens/ (the copies docs/client.md shows).

import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitScreen, check, until, repoRoot, artifactsDir } from './harness.mjs';
import {
    marker, pair, compose, composeForm, seeEntry, erase, createConversation, openLink, goOn,
} from './conversation.mjs';

export const PHONE390 = { width: 390, height: 844 };

/* The committed screens are refreshed only on request (THOU_DOC_SHOTS=1), so that an
 * ordinary test run leaves the tree as it was. */
const docsDir = process.env.THOU_DOC_SHOTS ? join(repoRoot, 'docs', 'screens') : artifactsDir;

/** A screenshot of what fits the phone's screen, for docs/client.md. */
async function docShot(page, name) {
    mkdirSync(docsDir, { recursive: true });
    await page.waitForTimeout(80);
    await page.screenshot({ path: join(docsDir, `${name}.png`) });
}

/** Text of the element with `testid`, trimmed. */
async function text(page, testid) {
    return (await page.getByTestId(testid).first().textContent()).trim();
}

/** The pause is B's: A sees who paused, no "carry on", no turn; only B lifts it. */
export async function pauseBelongsToPauser({ browser, server }) {
    const problems = [];
    const { a, b } = await pair(browser, server, { viewport: PHONE390, problems });
    await composeForm(a, 'answer').waitFor();
    await b.getByTestId('pause-button').click();

    await a.locator('[data-testid=paused][data-by=partner]').waitFor();
    check(await text(a, 'paused-title') === 'Your partner paused', 'A sees who paused');
    check((await a.getByTestId('paused').textContent()).includes('Take your time'),
        'A is told to take their time');
    check(await a.getByTestId('resume-button').count() === 0,
        'the partner who did not pause has no "carry on"');
    check(await a.getByTestId('compose-input').count() === 0, 'no answer box while paused');
    const turnA = await text(a, 'turn');
    check(turnA === 'Paused', `no one's turn while paused, A reads "${turnA}"`);
    check(await a.getByTestId('end-button').isVisible(), 'the partner can still end');
    await docShot(a, 'paused-partner-390x844');

    await b.locator('[data-testid=paused][data-by=me]').waitFor();
    check(await text(b, 'paused-title') === 'You paused', 'B sees it is their pause');
    check(await text(b, 'turn') === 'Paused', 'nor is it B\'s turn: B decides when to go on');
    check(await b.getByTestId('resume-button').isVisible(), 'B can carry on');
    await docShot(b, 'paused-mine-390x844');

    /* A's way to reach B meanwhile: a note, one tap away. */
    await a.getByTestId('paused-note-button').click();
    check(await a.evaluate(() => document.activeElement?.dataset.testid) === 'note-input',
        '"Send a note" puts the cursor in the note box');
    const note = marker('while you pause');
    await a.keyboard.type(note);
    await a.keyboard.press('Enter');
    await seeEntry(b, note);

    await b.getByTestId('resume-button').click();
    await composeForm(a, 'answer').waitFor();
    check((await text(a, 'turn')).startsWith('Your turn'), 'the turn line is back');
    check(problems.length === 0, problems.join('\n'));
    await a.context().close();
    await b.context().close();
}

/** Erase sits apart from End, says "for both", and needs a box ticked before it works. */
export async function eraseIsDeliberate({ browser, server }) {
    const problems = [];
    const { a, b } = await pair(browser, server, { viewport: PHONE390, problems });
    await composeForm(a, 'answer').waitFor();
    check(await a.locator('.controls [data-testid=erase-button]').count() === 0,
        'erase is not among the conversation controls next to End');
    const endBox = await a.getByTestId('end-button').boundingBox();
    const eraseBox = await a.getByTestId('erase-button').boundingBox();
    check(eraseBox.y - (endBox.y + endBox.height) >= 48,
        `erase is well away from End (${eraseBox.y - (endBox.y + endBox.height)} px)`);
    check((await a.getByTestId('erase-section').textContent()).includes('for both of you'),
        'the erase section says it erases for both');
    check((await text(a, 'erase-button')).includes('both'), 'and so does its button');

    await a.getByTestId('erase-button').click();
    const yes = a.getByTestId('erase-confirm-yes');
    await yes.waitFor();
    check(await yes.isDisabled(), 'the first tap only asks');
    await yes.click({ force: true }).catch(() => {});
    check(await a.getByTestId('erase-confirm').count() === 1,
        'a tap on the disabled button erases nothing');
    await a.getByTestId('erase-sure').check();
    check(await yes.isEnabled(), 'ticking the box is the second, deliberate step');
    await a.getByTestId('erase-confirm').scrollIntoViewIfNeeded();
    await docShot(a, 'erase-confirm-390x844');
    /* Cancel keeps everything; then erase for real. */
    await a.getByTestId('erase-confirm-no').click();
    await a.getByTestId('erase-button').waitFor();
    const text1 = marker('still here');
    await compose(a, 'answer', text1);
    await seeEntry(b, text1);
    await erase(a);
    await waitScreen(a, 'erased');
    await waitScreen(b, 'error', 30000);
    check(problems.length === 0, problems.join('\n'));
    await a.context().close();
    await b.context().close();
}

/** Pass every step, on whichever page may move, until both stand at a stage gate. */
async function passToGate(a, b) {
    for (let i = 0; i < 60; i++) {
        if (await a.getByTestId('vote').count() > 0 && await b.getByTestId('vote').count() > 0) {
            return;
        }
        for (const p of [a, b]) {
            const pass = p.getByTestId('pass-button');
            if (await pass.count() > 0 && await pass.first().isEnabled()) {
                await pass.first().click().catch(() => {});
                await p.waitForTimeout(150);
            }
        }
        await a.waitForTimeout(100);
    }
    check(false, 'never reached a stage gate');
}

/** Going deeper is a choice both make; staying ends warmly at the depth reached. */
export async function stageVotes({ browser, server }) {
    const problems = [];
    const { a, b } = await pair(browser, server, { viewport: PHONE390, problems });
    await composeForm(a, 'answer').waitFor();
    const firstStage = await text(a, 'stage-title');
    await passToGate(a, b);
    for (const p of [a, b]) {
        check(await text(p, 'stage-title') !== firstStage, 'the next stage is introduced');
        check((await text(p, 'stage-intro')).length > 20, 'with what it is about');
        check((await text(p, 'vote-title')).includes(await text(p, 'stage-title')),
            'the choice names the stage');
        check(await p.getByTestId('question-text').count() === 0,
            'its first question is not shown before both chose');
        check(await p.getByTestId('compose-input').count() === 0, 'nothing to write yet');
        check(await p.getByTestId('go-on-button').isVisible(), 'go on is offered');
        check(await p.getByTestId('stay-here-button').isVisible(), 'stay here is offered');
    }
    await b.evaluate(() => document.querySelector('[data-part=stage]').scrollIntoView());
    await docShot(b, 'stage-vote-390x844');
    await a.getByTestId('go-on-button').click();
    await a.getByTestId('vote-waiting').waitFor();
    await b.waitForTimeout(300);
    check(await b.getByTestId('go-on-button').isVisible(),
        'one go on does not open the stage: B still chooses');
    check(await b.getByTestId('vote-waiting').count() === 0, 'and B is not told A\'s choice');
    await b.getByTestId('go-on-button').click();
    await until(async () => await a.getByTestId('compose').count() > 0
        || await b.getByTestId('compose').count() > 0, 'the stage opens when both chose');
    check(await a.getByTestId('question-text').isVisible(), 'its first question is shown');

    /* The next gate: B stays here; the conversation ends, kindly and for both. */
    await passToGate(a, b);
    await b.getByTestId('stay-here-button').click();
    await waitScreen(a, 'ended');
    await waitScreen(b, 'ended');
    for (const p of [a, b]) {
        check(await text(p, 'ended-title') === 'You stopped at a good depth',
            'the ending says the couple stopped at a depth');
        check((await text(p, 'ended-line')).includes('not a failure'), 'kindly');
    }
    await docShot(a, 'ended-stayed-390x844');
    check(problems.length === 0, problems.join('\n'));
    await a.context().close();
    await b.context().close();
}

/** The question and the writing box lie within the first screen, unscrolled. */
async function firstScreen(page, what) {
    await page.evaluate(() => window.scrollTo(0, 0));
    const height = PHONE390.height;
    const question = await page.getByTestId('question-text').boundingBox();
    const box = await page.getByTestId('compose-input').boundingBox();
    check(question && question.y >= 0 && question.y + question.height <= height,
        `${what}: the question is on the first screen (${JSON.stringify(question)})`);
    check(box && box.y >= 0 && box.y + box.height <= height,
        `${what}: the writing box is on the first screen (${JSON.stringify(box)})`);
    check(box.height >= 80, `${what}: the box is big enough to write in (${box.height} px)`);
}

/** At 390×844 the question and the box to write in are visible without scrolling. */
export async function writingBoxFirst({ browser, server }) {
    const problems = [];
    const { a, b } = await pair(browser, server, { viewport: PHONE390, problems });
    await composeForm(a, 'answer').waitFor();
    check(!(await a.getByTestId('stage-intro').isVisible()), 'the stage intro is folded');
    check(!(await a.locator('.stages').isVisible()), 'the stage list is folded');
    await firstScreen(a, 'A answering the first question');
    await docShot(a, 'first-screen-390x844');
    await compose(a, 'answer', marker('first screen answer'));
    await composeForm(b, 'reflect').waitFor();
    await b.evaluate(() => window.scrollTo(0, 0));
    await docShot(b, 'first-screen-reflect-390x844');
    await firstScreen(b, 'B saying what they heard');
    /* one tap unfolds what was folded */
    await a.getByTestId('stage-about').locator('summary').click();
    check(await a.getByTestId('stage-intro').isVisible(), 'the intro opens with one tap');
    check(problems.length === 0, problems.join('\n'));
    await a.context().close();
    await b.context().close();
}

/** B is welcomed before the first question; the safety code is explained where shown. */
export async function partnerWelcomed({ browser, server }) {
    const problems = [];
    const { page: a, link } = await createConversation(browser, server,
        { viewport: PHONE390, problems });
    const b = await openLink(browser, link, { viewport: PHONE390, problems });
    await waitScreen(b, 'welcome');
    await waitScreen(a, 'talk');
    const welcome = await b.getByTestId('welcome').textContent();
    check(welcome.includes('How it works'), 'B sees how it works');
    check(welcome.includes('You take turns'), 'with the steps A saw on the start page');
    check(welcome.includes('end-to-end encrypted'), 'and what is private');
    check(await b.getByTestId('question-text').count() === 0, 'before the first question');
    const codeB = await text(b, 'welcome-safety-code');
    await a.getByTestId('privacy-status').click();
    check(await text(a, 'safety-code') === codeB, 'the safety code B sees is A\'s');
    const help = await text(b, 'safety-code-help');
    check(help.split(/[.!?](\s|$)/).filter((x) => x && x.trim()).length === 1,
        `the code is explained in one sentence: "${help}"`);
    check((await a.locator('.privacy-body').textContent()).includes(help),
        'the same sentence where A sees the code');
    await docShot(b, 'welcome-390x844');
    await b.getByTestId('welcome-begin').click();
    await waitScreen(b, 'talk');
    await b.reload();
    await waitScreen(b, 'talk'); /* welcomed once, not on every visit */
    check(problems.length === 0, problems.join('\n'));
    await a.context().close();
    await b.context().close();
}

/** A stranger opening the link of an ended conversation is not told "one of you". */
export async function strangerWording({ browser, server }) {
    const problems = [];
    const { a, b, link } = await pair(browser, server, { viewport: PHONE390, problems });
    await a.getByTestId('end-button').click();
    await a.getByTestId('end-confirm-yes').click();
    await waitScreen(a, 'ended');
    const c = await openLink(browser, link, { viewport: PHONE390 });
    await waitScreen(c, 'error');
    const body = await c.getByTestId('error-message').textContent();
    check(!/one of you/i.test(body), `a stranger is not addressed as one of the couple: "${body}"`);
    await c.context().close();
    await a.context().close();
    await b.context().close();
}

/** The words fit the step: "is that what you meant?" and the reveal question's reflections. */
export async function wordsFitTheStep({ browser, server }) {
    const problems = [];
    const { a, b } = await pair(browser, server, { viewport: PHONE390, problems });
    await compose(a, 'answer', marker('fit answer'));
    await compose(b, 'reflect', marker('fit heard'));
    await a.getByTestId('confirm-step').waitFor();
    check(await text(a, 'pass-button') === 'Leave it there',
        'at "Is that what you meant?" the quiet way out is not called "Pass"');
    check((await text(a, 'turn')).includes('did they hear you?'), 'A\'s turn line is about it');
    await until(async () => (await text(b, 'turn')).includes('check you heard them right'),
        'B\'s turn line says what A is doing');
    await a.getByTestId('confirm-heard-button').click();
    await passToGate(a, b);
    await goOn(a, b);
    await passToGate(a, b);
    await goOn(a, b);
    /* the reveal-together question: both write, then both say what they see */
    await compose(a, 'answer', marker('reveal A'));
    await compose(b, 'answer', marker('reveal B'));
    const seenA = marker('seen by A');
    await compose(a, 'reflect', seenA);
    const who = await a.locator('[data-testid=thread] [data-type=reflect] .entry-who')
        .first().textContent();
    check(who === 'What you see in their answer', `not "You heard" on the reveal: "${who}"`);
    const seenB = marker('seen by B');
    await compose(b, 'reflect', seenB);
    /* whoever reflected first sees the other's reflection before the next question */
    await a.getByTestId('both-saw').waitFor();
    check((await a.getByTestId('both-saw-partner').textContent()).includes(seenB),
        'A, who reflected first, sees B\'s reflection');
    check(!(await a.getByTestId('question').isVisible()), 'the next question waits');
    await b.getByTestId('both-saw').waitFor();
    check((await b.getByTestId('both-saw-mine').textContent()).includes(seenB), 'B sees both');
    await a.getByTestId('both-saw').scrollIntoViewIfNeeded();
    await a.evaluate(() => document.querySelector('[data-testid=both-saw]').scrollIntoView());
    await docShot(a, 'both-saw-390x844');
    await a.getByTestId('both-saw-next').click();
    await a.getByTestId('question-text').waitFor();
    check(await a.getByTestId('both-saw').count() === 0, 'read, it gives way');
    check(problems.length === 0, problems.join('\n'));
    await a.context().close();
    await b.context().close();
}

async function inViewport(page, selector) {
    return page.evaluate((sel) => {
        const all = document.querySelectorAll(sel);
        const el = all[all.length - 1];
        if (!el) {
            return false;
        }
        const r = el.getBoundingClientRect();
        return r.bottom > 0 && r.top < window.innerHeight;
    }, selector);
}

/** What arrives out of sight shows a polite indicator; one tap takes the reader there. */
export async function nothingUnnoticed({ browser, server }) {
    const problems = [];
    const { a, b } = await pair(browser, server, { viewport: PHONE390, problems });
    await compose(a, 'answer', marker('seen answer'));
    await composeForm(b, 'reflect').waitFor();
    /* A has been writing notes, and reads the foot of the page (the notes, the controls) */
    for (const q of ['Tell me more', 'Thank you', 'I need a minute']) {
        await a.getByRole('button', { name: q }).click();
    }
    await until(async () => await a.locator('[data-part=notes-list] [data-testid=entry]').count()
        === 3, 'the notes are on the page');
    await a.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
    const where = await a.evaluate(() => [window.scrollY, document.body.scrollHeight,
        document.querySelector('[data-part=thread]').getBoundingClientRect().bottom]);
    check(!(await inViewport(a, '[data-part=thread] [data-testid=entry]')),
        `the thread is out of sight ${where}`);
    check(await a.getByTestId('nudge').count() === 0, 'no indicator before anything arrived');
    const heard = marker('heard, out of sight');
    await compose(b, 'reflect', heard);
    await a.getByTestId('nudge').waitFor();
    check(await text(a, 'nudge') === 'Your partner said what they heard', 'it says what arrived');
    check((await a.locator('[data-live]').textContent()).includes('Your partner heard'),
        'the screen-reader announcement stays');
    await docShot(a, 'nudge-390x844');
    await a.getByTestId('nudge').click();
    await until(() => inViewport(a, '[data-part=thread] [data-testid=entry]'),
        'one tap brings the new reflection into view');
    check(await a.getByTestId('nudge').count() === 0, 'and the indicator is gone');
    /* in sight already: no indicator */
    await a.getByTestId('confirm-heard-button').click();
    /* a note while A is at the top of the page */
    await a.evaluate(() => window.scrollTo(0, 0));
    const note = marker('a note out of sight');
    await b.getByTestId('note-input').fill(note);
    await b.getByTestId('note-input').press('Enter');
    await a.getByTestId('nudge').waitFor();
    check(await text(a, 'nudge') === 'A note from your partner', 'a note has its own words');
    await a.getByTestId('nudge').click();
    await until(() => inViewport(a, '[data-part=notes-list]'), 'the tap shows the note');
    check(problems.length === 0, problems.join('\n'));
    await a.context().close();
    await b.context().close();
}

/** Run `fn(record)` on this page's IndexedDB record of the room; it may change it (return
 *  true to write it back). Returns what `inspect(record)` returns. */
function onRecord(page, roomId, source) {
    return page.evaluate(async ({ id, code }) => {
        const AsyncFunction = (async () => {}).constructor;
        const fn = new AsyncFunction('r', code);
        const db = await new Promise((ok, ko) => {
            const open = indexedDB.open('thou');
            open.onsuccess = () => ok(open.result);
            open.onerror = () => ko(open.error);
        });
        const r = await new Promise((ok) => {
            const get = db.transaction('rooms').objectStore('rooms').get(id);
            get.onsuccess = () => ok(get.result);
        });
        const out = await fn(r);
        if (out?.write) {
            await new Promise((ok) => {
                const tx = db.transaction('rooms', 'readwrite');
                tx.objectStore('rooms').put(r);
                tx.oncomplete = ok;
            });
        }
        db.close();
        return out?.value;
    }, { id: roomId, code: source });
}

/** Half-written text survives a reload and going offline, sealed; a bad draft is set aside. */
export async function draftsSurvive({ browser, server }) {
    const problems = [];
    const { a, b, roomId } = await pair(browser, server, { viewport: PHONE390, problems });
    await composeForm(a, 'answer').waitFor();
    const half = marker('half written, offline');
    await a.context().setOffline(true);
    await a.getByTestId('compose-input').fill(half);
    await a.waitForTimeout(900);
    await a.context().setOffline(false);
    const stored = await onRecord(a, roomId, `
        const names = Object.keys(r.drafts ?? {});
        const text = JSON.stringify(r.drafts, (k, v) => (v instanceof Uint8Array
            ? new TextDecoder().decode(v) : v));
        let exportable = true;
        try { await crypto.subtle.exportKey('raw', r.draftKey); } catch { exportable = false; }
        return { value: { names, text, extractable: r.draftKey?.extractable, exportable } };`);
    check(stored.names.length === 1, `one draft kept (${stored.names})`);
    check(!stored.text.includes(half.split(' ').at(-1)), 'the draft is not stored in the clear');
    check(stored.extractable === false && stored.exportable === false,
        'its key cannot be read out of the browser');
    await a.reload();
    await waitScreen(a, 'talk');
    await until(async () => await a.getByTestId('compose-input').inputValue() === half,
        'the draft is back in its box after a reload');
    check(await a.getByTestId('draft-unreadable').count() === 0, 'no warning for a good draft');

    /* a damaged draft: set aside with a clear line, nothing else lost */
    await onRecord(a, roomId, `
        const d = Object.values(r.drafts)[0];
        d.sealed[3] ^= 0xff;
        return { write: true };`);
    await a.reload();
    await waitScreen(a, 'talk');
    await a.getByTestId('draft-unreadable').waitFor();
    check(await a.getByTestId('compose-input').inputValue() === '', 'the damaged draft is not shown');
    const sent = marker('sent after a bad draft');
    await compose(a, 'answer', sent);
    await seeEntry(b, sent);

    /* the end of the conversation takes the drafts with it */
    await composeForm(b, 'reflect').waitFor();
    await b.getByTestId('compose-input').fill(marker('B half'));
    await b.waitForTimeout(900);
    check(await onRecord(b, roomId, 'return { value: Object.keys(r.drafts ?? {}).length };') === 1,
        'B\'s draft is kept');
    await a.getByTestId('end-button').click();
    await a.getByTestId('end-confirm-yes').click();
    await waitScreen(b, 'ended');
    await until(async () => await onRecord(b, roomId,
        'return { value: !r.drafts && !r.draftKey };'), 'drafts and their key are gone at the end');
    check(problems.length === 0, problems.join('\n'));
    await a.context().close();
    await b.context().close();
}

/** Something to keep: where we differ, side by side; save and print, made in the browser. */
export async function somethingToKeep({ browser, server }) {
    const problems = [];
    const { a, b } = await pair(browser, server, { viewport: PHONE390, problems });
    await passToGate(a, b);
    await goOn(a, b);
    await passToGate(a, b);
    await goOn(a, b);
    const t = {
        ra: marker('differ answer A'), rb: marker('differ answer B'),
        sa: marker('A saw'), sb: marker('B saw'), qa: marker('good for us A'),
        hb: marker('B heard'),
    };
    await compose(a, 'answer', t.ra);
    await compose(b, 'answer', t.rb);
    await compose(a, 'reflect', t.sa);
    await compose(b, 'reflect', t.sb);
    for (const p of [a, b]) {
        await p.getByTestId('both-saw-next').click();
    }
    await compose(a, 'answer', t.qa);
    await compose(b, 'reflect', t.hb);
    await a.getByTestId('confirm-heard-button').click();
    await passToGate(a, b);
    await a.getByTestId('stay-here-button').click();
    await waitScreen(a, 'ended');
    await waitScreen(b, 'ended');

    const items = b.getByTestId('differ-item');
    check(await items.count() === 2, `both questions of the differences stage (${await items.count()})`);
    const first = items.first();
    const mine = await first.getByTestId('differ-mine').textContent();
    const theirs = await first.getByTestId('differ-partner').textContent();
    check(mine.includes(t.rb) && mine.includes(t.sb), 'B\'s column: B\'s answer and reflection');
    check(theirs.includes(t.ra) && theirs.includes(t.sa), 'A\'s column: A\'s answer and reflection');
    check((await items.nth(1).getByTestId('differ-mine').textContent()).includes(t.hb),
        'the second question: B\'s reflection on B\'s side');
    await b.getByTestId('differ').scrollIntoViewIfNeeded();
    await b.evaluate(() => document.querySelector('[data-testid=differ]').scrollIntoView());
    await docShot(b, 'where-we-differ-390x844');

    /* saved as a file made here: no request leaves the page while saving */
    const requests = [];
    const onRequest = (r) => requests.push(r.url());
    a.on('request', onRequest);
    const [download] = await Promise.all([a.waitForEvent('download'),
        a.getByTestId('save-button').click()]);
    const path = await download.path();
    a.off('request', onRequest);
    const file = readFileSync(path, 'utf8');
    for (const x of Object.values(t)) {
        check(file.includes(x), `the saved file holds "${x}"`);
    }
    check(requests.every((u) => u.startsWith('blob:')), `nothing sent while saving: ${requests}`);
    check(/^thou-conversation-\d{4}-\d{2}-\d{2}\.txt$/.test(download.suggestedFilename()),
        download.suggestedFilename());

    /* printed: the conversation, without the buttons */
    await a.emulateMedia({ media: 'print' });
    check(!(await a.getByTestId('save-button').isVisible()), 'no buttons on paper');
    check(!(await a.getByTestId('erase-section').isVisible()), 'no erase section on paper');
    check(await a.getByTestId('differ').isVisible(), 'where we differ is printed');
    check(await a.getByTestId('history').isVisible(), 'and the conversation');
    await a.emulateMedia({ media: 'screen' });
    check(problems.length === 0, problems.join('\n'));
    await a.context().close();
    await b.context().close();
}

export const COUPLE_TESTS = [
    ['phone: something to keep', somethingToKeep],
    ['phone: drafts survive, sealed', draftsSurvive],
    ['phone: nothing from the partner goes unnoticed', nothingUnnoticed],
    ['phone: the words fit the step', wordsFitTheStep],
    ['phone: the one who joins is welcomed too', partnerWelcomed],
    ['phone: a stranger is not told "one of you"', strangerWording],
    ['phone: the writing box is on the first screen', writingBoxFirst],
    ['phone: going deeper is a choice both make', stageVotes],
    ['phone: a pause belongs to the one who paused', pauseBelongsToPauser],
    ['phone: erasing is apart from End and deliberate', eraseIsDeliberate],
];
