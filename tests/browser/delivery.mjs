// Every page of the generated client tree loads in Chromium under thou's CSP: hashed names
// only, compressed, cached for a year, and a repeat visit fetches nothing but the page.
//
//   THOU_BIN=build/thou node tests/browser/delivery.mjs [STATIC_DIR]
//
// STATIC_DIR defaults to build/static (what the build generates with
// script/build-static.mjs). Exits non-zero on any failure.

import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Server, launchBrowser, waitScreen, check, fail, repoRoot, PHONE } from './harness.mjs';

const IMMUTABLE = 'public, max-age=31536000, immutable';
const HASHED = /\.[0-9a-f]{16}(\.[a-z0-9]+)?$/;

/** CSP violations as the page itself reports them (console messages can be missed). */
function recordViolations() {
    window.__violations = [];
    document.addEventListener('securitypolicyviolation', (e) => {
        window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
}

/** A page that records every response of the server and every CSP violation. */
async function watchedPage(context, problems) {
    const page = await context.newPage();
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
        if (/Content Security Policy|Refused to/i.test(m.text())) {
            problems.push(`console: ${m.text()}`);
        }
    });
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
    await page.addInitScript(recordViolations);
    page.seen = [];
    page.on('response', async (response) => {
        const url = new URL(response.url());
        page.seen.push({
            path: url.pathname,
            status: response.status(),
            headers: await response.allHeaders(),
        });
    });
    return page;
}

async function violations(page) {
    return page.evaluate(() => window.__violations ?? []);
}

/** What a page loaded from the server: files with hashed names, compressed, immutable. */
function checkDelivery(page, what) {
    const files = page.seen.filter((r) => !r.path.startsWith('/api/'));
    const documents = files.filter((r) => !HASHED.test(r.path));
    const assets = files.filter((r) => HASHED.test(r.path));
    check(assets.length >= 3, `${what}: loaded ${assets.length} hashed files`);
    for (const r of documents) {
        check(r.path === '/' || r.path.startsWith('/r/') || r.path.endsWith('.html'),
            `${what}: ${r.path} is loaded by a plain name`);
        check(r.headers['cache-control'] === 'no-cache', `${what}: ${r.path} is revalidated`);
        if (r.status === 200) {
            /* Compressed or not, a page carries the policy the checks above rely on. */
            const csp = r.headers['content-security-policy'] ?? '';
            check(csp.includes("default-src 'none'") && csp.includes("script-src 'self'")
                && !csp.includes('unsafe-inline'), `${what}: ${r.path} CSP is '${csp}'`);
        }
    }
    for (const r of assets) {
        check(r.status === 200, `${what}: ${r.path} answered ${r.status}`);
        check(r.headers['cache-control'] === IMMUTABLE, `${what}: ${r.path} cached for a year`);
        check(/^(br|gzip)$/.test(r.headers['content-encoding'] ?? ''),
            `${what}: ${r.path} compressed (${r.headers['content-encoding']})`);
        check(r.headers.vary === 'Accept-Encoding', `${what}: ${r.path} varies on encoding`);
    }
}

async function startPage(browser, server) {
    const problems = [];
    const context = await browser.newContext({ viewport: PHONE });
    const page = await watchedPage(context, problems);
    await page.goto(`${server.base}/`);
    await page.getByTestId('create-button').waitFor();
    check(await page.getByTestId('create-button').isEnabled(), 'the create button works');
    checkDelivery(page, 'start page');
    check((await violations(page)).length === 0, `CSP: ${await violations(page)}`);

    /* A repeat visit: only the page itself crosses the network. */
    const again = await watchedPage(context, problems);
    const cdp = await context.newCDPSession(again);
    await cdp.send('Network.enable');
    const network = [];
    cdp.on('Network.responseReceived', (e) => {
        if (!e.response.fromDiskCache && !e.response.fromMemoryCache) {
            network.push(new URL(e.response.url).pathname);
        }
    });
    await again.goto(`${server.base}/`);
    await again.getByTestId('create-button').waitFor();
    const staticOverNetwork = network.filter((p) => !p.startsWith('/api/'));
    check(staticOverNetwork.length === 1 && staticOverNetwork[0] === '/',
        `repeat visit fetched only the page, not ${staticOverNetwork.join(', ')}`);
    check(problems.length === 0, problems.join('\n'));
    await context.close();
}

/* The start page does not wait for the crypto module: with libsodium held back, the sets
 * can be chosen and "create" pressed; the room is made once the module arrives. */
async function startBeforeCrypto(browser, server) {
    const problems = [];
    const context = await browser.newContext({ viewport: PHONE });
    const page = await watchedPage(context, problems);
    let release;
    const held = new Promise((r) => { release = r; });
    let asked = false;
    await page.route(/\/vendor\/libsodium\.[0-9a-f]{16}\.mjs$/, async (route) => {
        asked = true;
        await held;
        await route.continue();
    });
    await page.goto(`${server.base}/`, { waitUntil: 'commit' });
    const button = page.getByTestId('create-button');
    await button.waitFor({ timeout: 10000 }).catch(() => {
        fail('no create button while the crypto module is held back');
    });
    check(await button.isEnabled(), 'create can be pressed before the crypto module is there');
    check(asked, 'libsodium was requested (preloaded) and is still held back');
    await page.getByTestId('set-option').first().check();
    await button.click();
    await page.waitForTimeout(300);
    check(await page.getByTestId('room-link').count() === 0, 'no room before the module is there');
    release();
    const link = await page.getByTestId('room-link').inputValue();
    check(/\/r\/[A-Za-z0-9_-]+#[A-Za-z0-9_-]{43}$/.test(link), `a link once it is: ${link}`);
    check(problems.length === 0, problems.join('\n'));
    await context.close();
}

async function roomPages(browser, server) {
    const problems = [];
    const creatorContext = await browser.newContext();
    const creator = await watchedPage(creatorContext, problems);
    await creator.goto(`${server.base}/`);
    await creator.getByTestId('create-button').click();
    const link = await creator.getByTestId('room-link').inputValue();
    await creator.getByTestId('enter-link').click();
    await waitScreen(creator, 'waiting');
    checkDelivery(creator, 'room page (creator)');

    const partnerContext = await browser.newContext({ viewport: PHONE });
    const partner = await watchedPage(partnerContext, problems);
    await partner.goto(link);
    await waitScreen(partner, 'welcome'); /* the one who joins is welcomed first */
    await waitScreen(creator, 'talk');
    checkDelivery(partner, 'room page (partner)');
    check((await violations(partner)).length === 0, `CSP: ${await violations(partner)}`);
    check((await violations(creator)).length === 0, `CSP: ${await violations(creator)}`);

    /* The room page without its secret: the error screen, still under the CSP. */
    const stray = await watchedPage(await browser.newContext(), problems);
    await stray.goto(`${server.base}${new URL(link).pathname}`);
    await waitScreen(stray, 'error');
    checkDelivery(stray, 'room page without secret');
    check((await violations(stray)).length === 0, `CSP: ${await violations(stray)}`);
    check(problems.length === 0, problems.join('\n'));
    await stray.context().close();
    await partnerContext.close();
    await creatorContext.close();
}

/** Every other .html file in the tree loads and runs without a CSP violation. */
async function everyHtmlFile(browser, server, staticDir) {
    const pages = readdirSync(staticDir).filter((f) => f.endsWith('.html'));
    check(pages.includes('index.html') && pages.includes('room.html'), `pages: ${pages}`);
    for (const name of pages) {
        const problems = [];
        const context = await browser.newContext();
        const page = await watchedPage(context, problems);
        await page.goto(`${server.base}/${name}`);
        await page.locator('main[data-screen]').waitFor();
        checkDelivery(page, name);
        check((await violations(page)).length === 0, `${name} CSP: ${await violations(page)}`);
        check(problems.length === 0, `${name}: ${problems.join('\n')}`);
        await context.close();
    }
}

async function main() {
    const bin = resolve(repoRoot, process.env.THOU_BIN ?? 'build/thou');
    const staticDir = resolve(repoRoot, process.argv[2] ?? 'build/static');
    if (!existsSync(join(staticDir, '.manifest.json'))) {
        console.error(`${staticDir} is no generated tree: build first (script/build)`);
        process.exit(2);
    }
    const server = new Server({ bin, staticDir });
    await server.start();
    const browser = await launchBrowser();
    const tests = [
        ['start page: hashed, compressed, immutable; a revisit fetches the page only', startPage],
        ['start page: usable before the crypto module has loaded', startBeforeCrypto],
        ['room page for both partners, and without its secret', roomPages],
        ['every .html file loads under the CSP', (b, s) => everyHtmlFile(b, s, staticDir)],
    ];
    let failed = 0;
    try {
        for (const [name, fn] of tests) {
            try {
                await fn(browser, server);
                console.log(`ok   ${name}`);
            } catch (error) {
                failed += 1;
                console.log(`FAIL ${name}\n     ${String(error?.stack ?? error).split('\n')
                    .slice(0, 6).join('\n     ')}`);
            }
        }
    } finally {
        await browser.close().catch(() => {});
        await server.stop();
    }
    if (failed === 0) {
        rmSync(server.workDir, { recursive: true, force: true });
    } else {
        console.log(`kept for inspection: ${server.workDir}`);
    }
    console.log(`${tests.length - failed} passed, ${failed} failed`);
    process.exit(failed ? 1 : 0);
}

main().catch((error) => {
    console.error(error);
    process.exit(1);
});
