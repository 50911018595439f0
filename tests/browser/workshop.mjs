// A facilitated workshop in real Chromium against a real thou: one facilitator (laptop
// size) and four participants (phones, two pairs). The facilitator signs in, creates a
// workshop, shows the projector view, sees people pair, both pairs compare their safety
// codes, one pair talks (progress moves live), the facilitator releases a stage, pauses
// everyone, sends a note and a countdown, and ends the workshop. Every byte the
// facilitator's page receives is read off the wire (Chrome DevTools Protocol, event
// streams included) and must hold no ciphertext. With THOU_DOC_SHOTS=1 the dashboard and
// the projector view are shot into docs/screens/ (docs/facilitators.md shows them).

import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
    Server, newPage, waitScreen, check, until, repoRoot, artifactsDir, DESKTOP,
} from './harness.mjs';
import { marker, compose, composeForm, confirmHeard, seeEntry } from './conversation.mjs';

const PHONE390 = { width: 390, height: 844 };
const LAPTOP = { width: 1366, height: 900 };
const PROJECTOR = { width: 1920, height: 1080 };
const docsDir = process.env.THOU_DOC_SHOTS ? join(repoRoot, 'docs', 'screens') : artifactsDir;

async function docShot(page, name, { fullPage = false } = {}) {
    mkdirSync(docsDir, { recursive: true });
    await page.waitForTimeout(150);
    await page.screenshot({ path: join(docsDir, `${name}.png`), fullPage });
}

/**
 * A thou of its own with one facilitator account made by the CLI before it starts;
 * `settings` override config/thou.json.
 */
async function workshopServer(plain, name, password, settings = null) {
    let server = new Server({ bin: plain.bin });
    if (settings) {
        const config = join(server.workDir, 'thou.json');
        writeFileSync(config, JSON.stringify({
            ...JSON.parse(readFileSync(join(repoRoot, 'config/thou.json'), 'utf8')), ...settings,
        }));
        server = new Server({ bin: plain.bin, workDir: server.workDir, config });
    }
    execFileSync(server.bin, ['facilitator', 'add', name, '--config', server.config,
        '--data-dir', server.dataDir], { cwd: repoRoot, input: `${password}\n`,
        stdio: ['pipe', 'ignore', 'pipe'],
        /* thou refuses THOU_* variables it does not know (the test's own, say) */
        env: Object.fromEntries(Object.entries(process.env)
            .filter(([key]) => !key.startsWith('THOU_'))) });
    await server.start();
    return server;
}

/**
 * Everything the page receives, as text: bodies of ordinary responses and every chunk of
 * streamed ones (the snapshot stream), straight from the network layer.
 */
async function wireTap(page) {
    const tap = { text: [], urls: [] };
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');
    const streaming = new Set();
    cdp.on('Network.responseReceived', async ({ requestId, response }) => {
        tap.urls.push(response.url);
        if (/event-stream/.test(response.mimeType)) {
            streaming.add(requestId);
            try {
                const { bufferedData } = await cdp.send('Network.streamResourceContent',
                    { requestId });
                tap.text.push(Buffer.from(bufferedData, 'base64').toString('utf8'));
            } catch (e) {
                tap.error = `cannot stream ${response.url}: ${e.message}`;
            }
        }
    });
    cdp.on('Network.dataReceived', ({ requestId, data }) => {
        if (streaming.has(requestId) && data) {
            tap.text.push(Buffer.from(data, 'base64').toString('utf8'));
        }
    });
    cdp.on('Network.loadingFinished', async ({ requestId }) => {
        if (streaming.has(requestId)) {
            return;
        }
        try {
            const { body, base64Encoded } = await cdp.send('Network.getResponseBody', { requestId });
            tap.text.push(base64Encoded ? Buffer.from(body, 'base64').toString('utf8') : body);
        } catch {
            /* a body the browser did not keep (a redirect, a 204) */
        }
    });
    return tap;
}

/** Every ciphertext a participant's page posts (to check none reaches the facilitator). */
function collectCiphertexts(page, into) {
    page.on('request', (request) => {
        if (request.method() === 'POST' && /\/api\/rooms\/[^/]+\/events$/.test(request.url())) {
            try {
                const body = JSON.parse(request.postData() ?? '{}');
                if (typeof body.ciphertext === 'string') {
                    into.push(body.ciphertext);
                }
            } catch {
                /* not JSON */
            }
        }
    });
}

async function dashboardSnapshot(page) {
    return page.evaluate(async () => {
        const id = new URLSearchParams(location.search).get('w');
        const r = await fetch(`/api/workshops/${id}`, { credentials: 'same-origin' });
        return r.json();
    });
}

async function joinWorkshop(browser, server, link, problems) {
    const page = await newPage(browser, PHONE390, problems);
    await page.goto(`${server.base}${link}`);
    await page.getByTestId('join-button').click();
    return page;
}

/** Both partners read the same 6-digit code and say so; the conversation opens. */
async function compareCodes(p, q) {
    await waitScreen(p, 'safetyCode');
    await waitScreen(q, 'safetyCode');
    const codeP = (await p.getByTestId('sas-code').textContent()).trim();
    const codeQ = (await q.getByTestId('sas-code').textContent()).trim();
    check(/^\d{3} \d{3}$/.test(codeP), `a 6-digit code: "${codeP}"`);
    check(codeP === codeQ, `both see the same code (${codeP} / ${codeQ})`);
    const status = (await p.getByTestId('privacy-status').textContent()).trim();
    check(status !== 'Private', `not called private before the codes were compared: ${status}`);
    check(await p.getByTestId('compose-input').count() === 0, 'no box to write in yet');
    await p.getByTestId('sas-yes').click();
    await q.getByTestId('sas-yes').click();
    await waitScreen(p, 'talk');
    await waitScreen(q, 'talk');
    check((await p.getByTestId('privacy-status').textContent()).trim() === 'Private',
        'private once both said the codes are the same');
}

/** The one whose turn it is to answer, and the other. */
async function speakerOf(p, q) {
    const who = await until(async () => {
        if (await composeForm(p, 'answer').count() > 0) {
            return 'p';
        }
        return await composeForm(q, 'answer').count() > 0 ? 'q' : null;
    }, 'someone may answer');
    return who === 'p' ? [p, q] : [q, p];
}

/**
 * One question through: each answers once; in a stage with listening, the other says what
 * they heard and the one who answered confirms ("Getting started" has none).
 */
async function oneQuestion(p, q, typed, { listening = false } = {}) {
    for (let half = 0; half < 2; half++) {
        const [speaker, listener] = await speakerOf(p, q);
        const answer = marker(`answer ${half}`);
        typed.push(answer);
        await compose(speaker, 'answer', answer);
        await seeEntry(listener, answer);
        if (listening) {
            const heard = marker(`heard ${half}`);
            typed.push(heard);
            await compose(listener, 'reflect', heard);
            await confirmHeard(speaker);
        }
    }
}

async function pairRow(f, n) {
    return f.locator(`[data-testid=pair][data-pair="${n}"]`);
}

export async function facilitatedWorkshop({ browser, server: plain }) {
    const password = 'correct horse battery staple';
    const server = await workshopServer(plain, 'ada', password);
    const problems = [];
    const ciphertexts = [];
    const typed = [];
    try {
        /* ---- the facilitator signs in and creates a workshop */
        const f = await newPage(browser, LAPTOP, problems);
        const tap = await wireTap(f);
        await f.goto(`${server.base}/facilitate`);
        await f.getByTestId('login-name').fill('ada');
        await f.getByTestId('login-password').fill('not the password');
        await f.getByTestId('login-submit').click();
        await f.getByTestId('login-error').waitFor();
        await f.getByTestId('login-password').fill(password);
        await f.getByTestId('login-submit').click();
        await f.getByTestId('no-workshops').waitFor();
        const cookie = (await f.context().cookies()).find((c) => c.name === 'thou_session');
        check(cookie?.httpOnly && cookie.sameSite === 'Strict', 'an HttpOnly, SameSite=Strict session');
        await f.getByTestId('new-title').fill('Team day, Thursday');
        await f.getByTestId('new-set').selectOption('workshop-strangers');
        await f.getByTestId('create-workshop').click();
        await f.getByTestId('dash-title').waitFor();
        check(await f.getByTestId('dash-title').textContent() === 'Team day, Thursday',
            'the dashboard of the new workshop');
        const code = (await f.getByTestId('dash-code').textContent()).trim();
        check(/^[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}$/.test(code), `a grouped join code: ${code}`);
        await f.getByTestId('dash-live').filter({ hasText: 'Live' }).waitFor();

        /* ---- the projector view */
        const projector = await f.context().newPage();
        await projector.setViewportSize(PROJECTOR);
        const projectorTap = await wireTap(projector);
        await projector.goto(`${server.base}/facilitate/projector?w=${
            new URL(f.url()).searchParams.get('w')}`);
        await projector.getByTestId('projector-code').waitFor();
        check((await projector.getByTestId('projector-code').textContent()) === code,
            'the projector shows the code');
        const codeSize = await projector.getByTestId('projector-code')
            .evaluate((el) => parseFloat(getComputedStyle(el).fontSize));
        check(codeSize >= 120, `the code is very large on a projector (${codeSize} px)`);
        await until(() => projector.getByTestId('projector-qr')
            .evaluate((img) => img.complete && img.naturalWidth > 0), 'the QR code image loads');
        const link = `/w/${code.replace('-', '')}`;
        check((await projector.textContent('body')).includes(link), 'the projector shows the link');

        /* ---- four people join; the first two and the next two pair */
        const p1 = await joinWorkshop(browser, server, link, problems);
        await waitScreen(p1, 'waiting');
        check((await p1.getByTestId('workshop-title').textContent()) === 'Team day, Thursday',
            'the one waiting sees the workshop');
        await projector.getByTestId('projector-waiting').filter({ hasText: '1' }).waitFor();
        await f.getByTestId('count-waiting').filter({ hasText: '1' }).waitFor();
        await docShot(p1, 'workshop-waiting-390x844');
        const p2 = await joinWorkshop(browser, server, link, problems);
        const p3 = await joinWorkshop(browser, server, link, problems);
        const p4 = await joinWorkshop(browser, server, link, problems);
        for (const p of [p1, p2, p3, p4]) {
            collectCiphertexts(p, ciphertexts);
        }
        await f.getByTestId('count-paired').filter({ hasText: '4' }).waitFor();
        await projector.getByTestId('projector-paired').filter({ hasText: '4' }).waitFor();
        check(await f.getByTestId('pair').count() === 2, 'two pairs on the dashboard');
        for (const p of [p1, p2, p3, p4]) {
            await until(() => p.url().includes('/r/'), 'each participant goes to a room');
        }

        /* ---- both pairs compare their safety codes */
        await docShot(p1, 'workshop-safety-code-390x844');
        await compareCodes(p1, p2);
        await compareCodes(p3, p4);

        /* ---- the first pair talks; progress moves live on the dashboard */
        const row1 = await pairRow(f, 1);
        const before = Number(await row1.getAttribute('data-index'));
        await oneQuestion(p1, p2, typed);
        await until(async () => Number(await row1.getAttribute('data-index')) > before,
            'pair 1\'s progress moves on the dashboard');
        await oneQuestion(p1, p2, typed);
        await oneQuestion(p1, p2, typed);
        /* both choose to go deeper, but only stage 1 of 5 was released: pair 1 is held */
        for (const p of [p1, p2]) {
            await p.getByTestId('go-on-button').click();
        }
        await p1.getByTestId('held').waitFor();
        await p2.getByTestId('held').waitFor();
        check(await p1.getByTestId('question-text').count() === 0
            && await p1.getByTestId('compose-input').count() === 0,
            'the held stage\'s first question is not shown, nothing to write');
        await docShot(p1, 'workshop-held-390x844');
        await row1.and(f.locator('[data-status=held]')).waitFor();

        /* ---- release the next stage: the held pair may go on */
        await f.getByTestId('release-next').click();
        await f.getByTestId('released').filter({ hasText: '2 of 5' }).waitFor();
        await p1.getByTestId('held').waitFor({ state: 'detached' });
        await oneQuestion(p1, p2, typed, { listening: true });

        /* ---- pause everyone (from the keyboard); only the facilitator lifts it */
        await f.getByTestId('pause-all').focus();
        await f.keyboard.press('Enter');
        for (const p of [p1, p2, p3, p4]) {
            await p.locator('[data-testid=paused][data-by=facilitator]').waitFor();
            check(await p.getByTestId('resume-button').count() === 0,
                'no "carry on" for a pause that is the facilitator\'s');
        }
        await f.getByTestId('paused-all').waitFor();
        check(await f.evaluate(() => document.activeElement?.dataset.testid) === 'resume-all',
            'the keyboard focus moves to the button that replaced the one pressed');
        check((await f.locator('[data-live]').textContent()).includes('Everyone is paused'),
            'screen readers are told the room is paused');
        await docShot(p3, 'workshop-paused-390x844');
        await f.getByTestId('resume-all').click();
        await p3.locator('[data-testid=paused]').waitFor({ state: 'detached' });

        /* ---- a note and a countdown for everyone */
        const note = 'Five more minutes, then we talk together.';
        await f.getByTestId('broadcast-input').fill(note);
        await f.getByTestId('broadcast-send').click();
        await f.getByTestId('timer-minutes').fill('5');
        await f.getByTestId('timer-start').click();
        for (const p of [p1, p2, p3, p4]) {
            await p.getByTestId('facilitator-note').filter({ hasText: note }).waitFor();
            await p.getByTestId('facilitator-timer').waitFor();
        }
        const left = await p4.getByTestId('facilitator-timer').textContent();
        check(/^[45]:\d\d$/.test(left), `the countdown shows about five minutes: ${left}`);
        await projector.getByTestId('projector-note').filter({ hasText: note }).waitFor();
        await docShot(p4, 'workshop-note-390x844');

        /* ---- pictures of the dashboard and the projector */
        await f.getByTestId('current-note').waitFor();
        await f.evaluate(() => {
            document.activeElement?.blur();
            window.scrollTo(0, 0);
        });
        await docShot(f, 'facilitator-dashboard-1366', { fullPage: true });
        await docShot(projector, 'facilitator-projector-1920x1080');
        await f.getByTestId('back').click();
        await f.getByTestId('workshop-link').first().waitFor();
        await docShot(f, 'facilitator-workshops-1366x900');
        await f.getByTestId('workshop-link').first().click();
        await f.getByTestId('dash-title').waitFor();

        /* ---- end, with a confirm step */
        await f.getByTestId('end-workshop').click();
        await f.getByTestId('end-no').click();
        check(await f.getByTestId('dash-state').textContent() !== 'Ended', 'cancel keeps it going');
        await f.getByTestId('end-workshop').click();
        await f.getByTestId('end-yes').click();
        await f.getByTestId('dash-state').filter({ hasText: 'Ended' }).waitFor();
        for (const p of [p1, p2, p3, p4]) {
            await waitScreen(p, 'ended');
        }

        /* ---- nothing a participant wrote ever reached the facilitator's page */
        check(!tap.error && !projectorTap.error, tap.error ?? projectorTap.error);
        check(ciphertexts.length >= 12, `ciphertexts seen posted: ${ciphertexts.length}`);
        const wire = [...tap.text, ...projectorTap.text].join('\n');
        check(wire.includes('"snapshot"') || wire.includes('"counts"'),
            'the tap saw the snapshots');
        check(!/"ciphertext"/.test(wire), 'no ciphertext field reached the facilitator');
        for (const c of ciphertexts) {
            check(!wire.includes(c.slice(0, 40)), 'no ciphertext reached the facilitator');
        }
        for (const t of typed) {
            check(!wire.includes(t), 'no typed text reached the facilitator');
        }
        check(![...tap.urls, ...projectorTap.urls].some((u) => /\/api\/rooms\//.test(u)),
            'the facilitator\'s page never asked for a room');
        const snap = await dashboardSnapshot(f);
        check(!/token|room/i.test(Object.keys(snap.pairs?.[0] ?? {}).join(',')),
            'no tokens or room ids in a pair\'s row');
        check(problems.length === 0, `no page problems: ${problems.join('; ')}`);
        for (const p of [f, p1, p2, p3, p4]) {
            await p.context().close();
        }
    } finally {
        await server.stop();
        if (!process.env.THOU_BROWSER_KEEP) {
            rmSync(server.workDir, { recursive: true, force: true });
        }
    }
}

/** "No, it is different": a clear warning, and nothing sealed leaves that browser. */
export async function codesDiffer({ browser, server: plain }) {
    const server = await workshopServer(plain, 'bo', 'another password');
    const problems = [];
    try {
        const f = await newPage(browser, DESKTOP, problems);
        await f.goto(`${server.base}/facilitate`);
        await f.getByTestId('login-name').fill('bo');
        await f.getByTestId('login-password').fill('another password');
        await f.getByTestId('login-submit').click();
        await f.getByTestId('new-title').fill('Codes');
        await f.getByTestId('create-workshop').click();
        const code = (await f.getByTestId('dash-code').textContent()).trim();
        const p = await joinWorkshop(browser, server, `/w/${code.toLowerCase()}`, problems);
        const q = await joinWorkshop(browser, server, `/w/${code}`, problems);
        const sealedFromQ = [];
        collectCiphertexts(q, sealedFromQ);
        await waitScreen(p, 'safetyCode');
        await waitScreen(q, 'safetyCode');
        await q.getByTestId('sas-no').click();
        await q.getByTestId('sas-mismatch').waitFor();
        check((await q.getByTestId('sas-mismatch').textContent()).includes('call the facilitator'),
            'the warning says what to do');
        await docShot(q, 'workshop-codes-differ-390x844');
        await p.getByTestId('sas-yes').click();
        await waitScreen(p, 'talk');
        /* Q's person said no: its page writes nothing, even after a reload. */
        await q.reload();
        await q.getByTestId('sas-mismatch').waitFor();
        check(await q.getByTestId('compose-input').count() === 0, 'no box to write in');
        check(await q.getByTestId('note-input').count() === 0, 'no note box either');
        await q.waitForTimeout(500);
        check(sealedFromQ.length === 0, `nothing sealed was sent (${sealedFromQ.length})`);
        check(problems.length === 0, `no page problems: ${problems.join('; ')}`);
        for (const page of [f, p, q]) {
            await page.context().close();
        }
    } finally {
        await server.stop();
        rmSync(server.workDir, { recursive: true, force: true });
    }
}

/** Sign in and create a workshop over the API (for tests about the participants). */
async function apiWorkshop(server, name, password, title) {
    const login = await fetch(`${server.base}/api/facilitator/login`, { method: 'POST',
        headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name, password }) });
    check(login.status === 200, `login answered ${login.status}`);
    const { csrf } = await login.json();
    const cookie = login.headers.get('set-cookie').split(';')[0];
    const made = await fetch(`${server.base}/api/workshops`, { method: 'POST',
        headers: { 'Content-Type': 'application/json', Cookie: cookie, 'X-CSRF-Token': csrf },
        body: JSON.stringify({ title, set: 'workshop-strangers' }) });
    check(made.status === 201, `create answered ${made.status}`);
    const workshop = await made.json();
    workshop.act = async (action) => {
        const r = await fetch(`${server.base}/api/workshops/${workshop.id}/actions`, {
            method: 'POST', body: JSON.stringify({ action }),
            headers: { 'Content-Type': 'application/json', Cookie: cookie, 'X-CSRF-Token': csrf } });
        check(r.status === 200, `${action} answered ${r.status}`);
    };
    return workshop;
}

/** A wrong code, closed joining and an ended workshop each get a clear page. */
export async function joinRefusals({ browser, server: plain }) {
    const server = await workshopServer(plain, 'di', 'a fourth password');
    const problems = [];
    try {
        const workshop = await apiWorkshop(server, 'di', 'a fourth password', 'Refusals');
        const code = workshop.code.replace('-', '');
        /* a wrong code: said so, and the right one can be typed in its place */
        const p = await newPage(browser, PHONE390, problems);
        const wrong = code.slice(0, 7) + (code[7] === 'Z' ? 'Y' : 'Z');
        await p.goto(`${server.base}/w/${wrong}`);
        await p.getByTestId('join-button').click();
        await p.locator('[data-testid=join-error][data-code=no_such_workshop]').waitFor();
        check((await p.getByTestId('join-error').textContent()).includes('No workshop with this code'),
            'a wrong code is explained');
        await p.getByTestId('join-code-input').fill(workshop.code.toLowerCase());
        await p.getByTestId('join-button').click();
        await waitScreen(p, 'waiting');
        /* joining closed */
        await workshop.act('close');
        const q = await newPage(browser, PHONE390, problems);
        await q.goto(`${server.base}/w/${code}`);
        await q.getByTestId('join-button').click();
        await q.locator('[data-testid=join-error][data-code=workshop_closed]').waitFor();
        check((await q.getByTestId('join-error').textContent()).includes('closed'),
            'closed joining is explained');
        /* ended: the one waiting is told, and so is a newcomer */
        await workshop.act('end');
        await waitScreen(p, 'ended');
        check((await p.getByTestId('join-error').textContent()).includes('has ended'),
            'the one waiting is told the workshop ended');
        await q.getByTestId('join-button').click();
        await waitScreen(q, 'ended');
        check(problems.length === 0, `no page problems: ${problems.join('; ')}`);
        await p.context().close();
        await q.context().close();
    } finally {
        await server.stop();
        rmSync(server.workDir, { recursive: true, force: true });
    }
}

/**
 * Partners who leave: after workshop_repair_after_s the one left behind is offered a new
 * partner or to finish alone; two people left behind find each other and start afresh
 * (a new safety code); one who finishes alone sees the conversation ended.
 */
export async function partnerLeaves({ browser, server: plain }) {
    const server = await workshopServer(plain, 'cy', 'a third password',
        { workshop_repair_after_s: 2 });
    const problems = [];
    try {
        const made = await apiWorkshop(server, 'cy', 'a third password', 'Left behind');
        const link = made.link ?? made.workshop?.link;
        const people = [];
        for (let i = 0; i < 6; i++) {
            people.push(await joinWorkshop(browser, server, link, problems));
            if (i % 2 === 1) {
                await compareCodes(people[i - 1], people[i]);
            }
        }
        const [p1, p2, p3, p4, p5, p6] = people;
        /* p2, p4 and p6 close their phones. */
        for (const p of [p2, p4, p6]) {
            await p.context().close();
        }
        for (const p of [p1, p3, p5]) {
            await p.getByTestId('partner-gone').waitFor({ timeout: 30000 });
        }
        await docShot(p1, 'workshop-partner-gone-390x844');
        /* p5 finishes alone. */
        await p5.getByTestId('finish-alone').click();
        await waitScreen(p5, 'ended');
        /* p1 and p3 ask for someone new and get each other. */
        await p1.getByTestId('find-new-partner').click();
        await until(() => p1.url().includes('/w/'), 'p1 waits for a new partner');
        await waitScreen(p1, 'waiting');
        const oldRoom = new URL(p3.url()).pathname;
        await p3.getByTestId('find-new-partner').click();
        await until(() => p3.url().includes('/r/') && new URL(p3.url()).pathname !== oldRoom,
            'p3 is paired at once, in a new room');
        await until(() => p1.url().includes('/r/'), 'p1 is paired with p3');
        check(new URL(p1.url()).pathname === new URL(p3.url()).pathname, 'p1 and p3 share a room');
        await compareCodes(p1, p3);
        const [speaker, listener] = await speakerOf(p1, p3);
        const text = marker('a fresh start');
        await compose(speaker, 'answer', text);
        await seeEntry(listener, text);
        check(problems.length === 0, `no page problems: ${problems.join('; ')}`);
        for (const p of [p1, p3, p5]) {
            await p.context().close();
        }
    } finally {
        await server.stop();
        rmSync(server.workDir, { recursive: true, force: true });
    }
}

export const WORKSHOP_TESTS = [
    ['workshop: a facilitator paces two pairs, content-blind', facilitatedWorkshop],
    ['workshop: different safety codes stop the sending', codesDiffer],
    ['workshop: a partner who leaves: a new partner, or finish alone', partnerLeaves],
    ['workshop: a wrong code, closed joining, an ended workshop', joinRefusals],
];
