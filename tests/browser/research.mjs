// A research study end to end (docs/research.md): the researcher's key and study, two pairs
// in Chromium (one consents, rates closeness, and B leaves one answer out at review; in the
// other B declines), the export, and a scan of the database and the log for anything that
// identifies a participant.

import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { newPage, waitScreen, check, until, repoRoot, DESKTOP, PHONE } from './harness.mjs';
import { marker, openLink, welcomed, compose, confirmHeard, seeEntry } from './conversation.mjs';

const STUDY = 'e2e-study';

function thou(...args) {
    const bin = resolve(repoRoot, process.env.THOU_BIN ?? 'build/thou');
    return execFileSync(bin, args, { cwd: repoRoot, encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A study key and a study with the closeness scale, made by the researcher's commands. */
function makeStudy(server) {
    const keyPath = join(server.workDir, 'study.key');
    const out = thou('study', 'keygen', '--out', keyPath);
    const publicKey = /public key:\s+(\S+)/.exec(out)[1];
    const fingerprint = /fingerprint:\s+([0-9a-f ]+)/.exec(out)[1].trim();
    thou('study', 'add', STUDY, '--public-key', publicKey, '--closeness',
        '--data-dir', server.dataDir, '--questions-dir', 'config/questions');
    return { keyPath, publicKey, fingerprint };
}

/** Create a conversation from /?study=…; its link carries the fingerprint after the secret. */
async function createInStudy(browser, server, fingerprint) {
    const a = await newPage(browser, DESKTOP);
    await a.goto(`${server.base}/?study=${STUDY}`);
    await a.getByTestId('study-note').waitFor();
    await a.getByTestId('create-button').waitFor();
    check(await a.getByTestId('set-option').count() === 0,
        'in a study no set is offered: the condition is assigned and not shown');
    await a.getByTestId('create-button').click();
    const link = await a.getByTestId('room-link').inputValue();
    const match = /\/r\/([A-Za-z0-9_-]+)#([A-Za-z0-9_-]{43})\.([0-9a-f]{32})$/.exec(link);
    check(match, `a study link has the form /r/<room>#<secret>.<fingerprint>: ${link}`);
    check(match[3] === fingerprint.replaceAll(' ', ''), 'the link carries the study fingerprint');
    await a.getByTestId('enter-link').click();
    await waitScreen(a, 'waiting');
    const b = await openLink(browser, link, { viewport: PHONE });
    await waitScreen(a, 'talk');
    await welcomed(b);
    return { a, b, link, roomId: match[1] };
}

async function panel(page, state) {
    await page.locator(`[data-testid=research][data-state=${state}]`).waitFor();
}

async function closeness(page, when, value) {
    await page.getByTestId(`closeness-${when}-${value}`).check();
    await page.getByTestId(`closeness-save-${when}`).click();
}

/** The CSV the export wrote, as objects (RFC 4180 quoting, CRLF rows). */
function parseCsv(text) {
    const rows = [];
    let row = [];
    let field = '';
    let quoted = false;
    for (let i = 0; i < text.length; i++) {
        const c = text[i];
        if (quoted) {
            if (c === '"' && text[i + 1] === '"') {
                field += '"';
                i++;
            } else if (c === '"') {
                quoted = false;
            } else {
                field += c;
            }
        } else if (c === '"') {
            quoted = true;
        } else if (c === ',') {
            row.push(field);
            field = '';
        } else if (c === '\r' && text[i + 1] === '\n') {
            row.push(field);
            rows.push(row);
            row = [];
            field = '';
            i++;
        } else {
            field += c;
        }
    }
    const [head, ...body] = rows;
    return body.map((r) => Object.fromEntries(head.map((k, i) => [k, r[i]])));
}

export async function researchStudy({ browser, server }) {
    const { keyPath, fingerprint } = makeStudy(server);

    /* Pair 1: both agree. */
    const one = await createInStudy(browser, server, fingerprint);
    for (const p of [one.a, one.b]) {
        await panel(p, 'ask');
        check((await p.getByTestId('study-fingerprint').textContent()) === fingerprint,
            'the panel shows the study key fingerprint');
        check((await p.getByTestId('study-who').textContent()).includes(STUDY),
            'the panel names the study');
    }
    await one.a.getByTestId('study-consent').click();
    await panel(one.a, 'waiting');
    await one.b.getByTestId('study-consent').click();
    await panel(one.a, 'before');
    await panel(one.b, 'before');
    check(await one.a.locator('#app').isHidden(), 'the conversation waits behind the scale');
    await closeness(one.a, 'before', 3);
    await until(() => one.a.locator('#app').isVisible(), 'the conversation comes back');
    /* B by keyboard: arrows through the pictures, Tab to Save, Enter. */
    await one.b.getByTestId('closeness-before-1').focus();
    for (let i = 0; i < 3; i++) {
        await one.b.keyboard.press('ArrowRight');
    }
    check(await one.b.getByTestId('closeness-before-4').isChecked(), 'arrows choose a picture');
    await one.b.keyboard.press('Tab');
    await one.b.keyboard.press('Enter');
    await panel(one.a, 'active');
    await panel(one.b, 'active');

    const typed = { a1: marker('A answers'), b1: marker('B heard'), b2: marker('B answers'),
        a2: marker('A heard') };
    await compose(one.a, 'answer', typed.a1);
    await seeEntry(one.b, typed.a1);
    await compose(one.b, 'reflect', typed.b1);
    await seeEntry(one.a, typed.b1);
    await confirmHeard(one.a);
    await compose(one.b, 'answer', typed.b2);
    await seeEntry(one.a, typed.b2);
    await compose(one.a, 'reflect', typed.a2);
    await seeEntry(one.b, typed.a2);
    await confirmHeard(one.b);
    await one.a.getByTestId('end-button').click();
    await one.a.getByTestId('end-confirm-yes').click();
    await waitScreen(one.a, 'ended');
    await waitScreen(one.b, 'ended');

    /* After the last question: closeness again, then the review. */
    await panel(one.a, 'after');
    await closeness(one.a, 'after', 5);
    await panel(one.b, 'after');
    await closeness(one.b, 'after', 6);
    await panel(one.b, 'review');
    const items = one.b.getByTestId('review-item');
    await until(async () => (await items.count()) === 2, 'B reviews two steps');
    const reviewTexts = await one.b.locator('.review-text').allTextContents();
    check(reviewTexts.includes(typed.b1) && reviewTexts.includes(typed.b2),
        `B reviews exactly their own words: ${reviewTexts}`);
    await one.b.locator(`[data-testid=review-item][data-step] >> text=${typed.b2}`)
        .locator('..').getByTestId('leave-out').check();
    await until(async () => !(await one.b.getByTestId('study-release').isDisabled()),
        'release is possible once every copy is sent');
    await one.b.getByTestId('study-release').click();
    await panel(one.b, 'released');
    check((await one.b.getByTestId('study-released').textContent()).includes('1 left out'),
        'B is told one step was left out');
    await panel(one.a, 'review');
    await until(async () => !(await one.a.getByTestId('study-release').isDisabled()),
        'A can release');
    await one.a.getByTestId('study-release').click();
    await panel(one.a, 'released');

    /* Pair 2: A agrees, B declines: nothing of it reaches the study. */
    const two = await createInStudy(browser, server, fingerprint);
    await panel(two.a, 'ask');
    await two.a.getByTestId('study-consent').click();
    await panel(two.b, 'ask');
    await two.b.getByTestId('study-decline').click();
    await panel(two.a, 'partner');
    await panel(two.b, 'declined');
    const declined = marker('declined pair');
    await compose(two.a, 'answer', declined);
    await seeEntry(two.b, declined);

    /* The export holds exactly what pair 1 typed, minus the step left out. */
    const csvPath = join(server.workDir, 'export.csv');
    thou('export', '--study', STUDY, '--key', keyPath, '--data-dir', server.dataDir,
        '--out', csvPath);
    const rows = parseCsv(readFileSync(csvPath, 'utf8'));
    const texts = rows.filter((r) => r.text !== '').map((r) => r.text).sort();
    check(JSON.stringify(texts) === JSON.stringify([typed.a1, typed.a2, typed.b1].sort()),
        `the export holds exactly the typed words minus the one left out: ${texts}`);
    check(new Set(rows.map((r) => r.pair_id)).size === 1, 'one conversation is exported');
    check(rows.every((r) => !r.pair_id.includes(one.roomId)), 'no room id in the export');
    const kinds = rows.map((r) => r.step).sort();
    check(JSON.stringify(kinds) === JSON.stringify(
        ['answer', 'confirm_heard', 'confirm_heard', 'reflect', 'reflect']),
    `the steps: ${kinds}`);
    const byRole = (role) => rows.find((r) => r.role === role);
    check(byRole('A').closeness_before === '3' && byRole('A').closeness_after === '5',
        'A\'s closeness before and after');
    check(byRole('B').closeness_before === '4' && byRole('B').closeness_after === '6',
        'B\'s closeness before and after');
    check(rows.every((r) => Number(r.seconds) >= 0 && Number(r.seconds) < 600),
        'seconds are relative to the start');
    check(!readFileSync(csvPath, 'utf8').includes(declined), 'the declined pair is absent');

    /* Nothing on disk identifies a participant: no address, no browser, no typed word. */
    const files = readdirSync(server.dataDir).map((f) => join(server.dataDir, f))
        .concat(existsSync(server.logPath) ? [server.logPath] : []);
    const userAgent = await one.a.evaluate(() => navigator.userAgent);
    for (const file of files) {
        const bytes = readFileSync(file);
        for (const needle of [...Object.values(typed), declined, userAgent, 'HeadlessChrome',
            one.link.split('#')[1]]) {
            check(!bytes.includes(Buffer.from(needle)), `${file} holds no "${needle}"`);
        }
        /* The log names the server's own listening address, and no other. */
        const text = bytes.toString('latin1');
        const addresses = (text.match(/127\.0\.0\.1/g) ?? []).length;
        const listening = (text.match(/listening on https?:\/\/127\.0\.0\.1/g) ?? []).length;
        check(addresses === (file === server.logPath ? listening : 0),
            `${file} holds no participant's IP address`);
    }
    for (const p of [one.a, one.b, two.a, two.b]) {
        await p.context().close();
    }
}

/** The server shows a study key other than the one in the link: the browser refuses it. */
export async function studyKeySwapped({ browser, server }) {
    if (!existsSync(join(server.workDir, 'study.key'))) {
        makeStudy(server);
    }
    const { link, a, b } = await (async () => {
        const fp = /fingerprint\s+([0-9a-f ]+)\t/.exec(thou('study', 'list', '--data-dir',
            server.dataDir))[1];
        return createInStudy(browser, server, fp);
    })();
    /* A third browser opens a copy of the link whose fingerprint names another key. */
    const forged = link.replace(/\.[0-9a-f]{32}$/, `.${'0'.repeat(32)}`);
    await b.context().close();
    const c = await openLink(browser, forged, { viewport: PHONE });
    await waitScreen(c, 'error'); /* the room is full: the real partner already joined */
    await c.context().close();
    await a.context().close();
    /* A fresh pair where B's link names another key: B refuses the server's key. */
    const fresh = await newPage(browser, DESKTOP);
    await fresh.goto(`${server.base}/?study=${STUDY}`);
    await fresh.getByTestId('create-button').click();
    const good = await fresh.getByTestId('room-link').inputValue();
    const bad = good.replace(/\.[0-9a-f]{32}$/, `.${'0'.repeat(32)}`);
    await fresh.getByTestId('enter-link').click();
    const d = await openLink(browser, bad, { viewport: PHONE });
    await welcomed(d);
    await panel(d, 'mismatch');
    check(await d.getByTestId('study-consent').count() === 0, 'no consent is offered');
    await fresh.context().close();
    await d.context().close();
}

function copiesOf(server, roomId) {
    const out = execFileSync('sqlite3', [join(server.dataDir, 'thou.db'),
        `SELECT count(*) FROM research_copies WHERE room_id = '${roomId}'`], { encoding: 'utf8' });
    return Number(out.trim());
}

/** Both agree, words are copied, then B withdraws: the copies go and no new ones come. */
export async function studyWithdrawn({ browser, server }) {
    if (!existsSync(join(server.workDir, 'study.key'))) {
        makeStudy(server);
    }
    const fp = /fingerprint\s+([0-9a-f ]+)\t/.exec(thou('study', 'list', '--data-dir',
        server.dataDir))[1];
    const { a, b, roomId } = await createInStudy(browser, server, fp);
    for (const p of [a, b]) {
        await panel(p, 'ask');
        await p.getByTestId('study-consent').click();
    }
    for (const [p, v] of [[a, 2], [b, 6]]) {
        await panel(p, 'before');
        await closeness(p, 'before', v);
        await panel(p, 'active');
    }
    const first = marker('before withdrawal');
    await compose(a, 'answer', first);
    await seeEntry(b, first);
    /* consent, closeness and the answer of A; consent and closeness of B */
    await until(() => copiesOf(server, roomId) === 5, 'the copies are stored');
    await b.getByTestId('study-withdraw').click();
    await panel(b, 'withdrawn');
    await panel(a, 'withdrawn');
    await until(() => copiesOf(server, roomId) === 0, 'a withdrawal deletes every copy');
    const second = marker('after withdrawal');
    await compose(b, 'reflect', second);
    await seeEntry(a, second);
    await a.waitForTimeout(500);
    check(copiesOf(server, roomId) === 0, 'nothing is copied after a withdrawal');
    for (const p of [a, b]) {
        await p.context().close();
    }
}

export const RESEARCH_TESTS = [
    ['a research study: consent, review, decline, export, nothing identifying', researchStudy],
    ['a study key other than the link\'s is refused', studyKeySwapped],
    ['a study withdrawn: its copies are deleted, no new ones', studyWithdrawn],
];
