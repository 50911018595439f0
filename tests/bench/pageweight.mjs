// Page weight and time to a usable page, as a phone on a slow network sees thou.
//
//   node tests/bench/pageweight.mjs [--bin build/thou] [--static-dir build/static]
//                                   [--runs 3] [--shots DIR]
//
// Starts its own thou (port 0, temporary data dir) and drives Debian's Chromium through
// playwright-core. Each scenario runs in a fresh browser context (empty cache, like a new
// user), with the network throttled by CDP (Network.emulateNetworkConditions) to Chromium's
// "Fast 3G" figures, 1.6 Mbit/s down, 750 kbit/s up, 150 ms round trip, and again
// unthrottled:
//   start page, first visit:   open /, until the "create" button can be pressed;
//   start page, repeat visit:  a new tab in the same context opens / again;
//   room page, first visit:    the partner opens the link (the creator waits in another,
//                              unthrottled context), until the conversation screen shows
//                              the question and the partner's presence (data-screen=talk);
//                              also when the page first shows the room's frame;
//   room page, repeat visit:   the partner's tab is closed and /r/<room> opened again.
// Bytes are what crossed the network for the page (headers included, CDP encodedDataLength):
// in all (once every request but the event stream has finished), and up to the moment it
// became usable; "static" counts the files, "all" adds the API calls.
// Prints one table (median of the runs) and, with --json, the raw runs. Not a test: it
// fails only when a page does not load.

import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Server, launchBrowser, repoRoot } from '../browser/harness.mjs';

const args = process.argv.slice(2);
function option(name, fallback) {
    const i = args.indexOf(name);
    return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
}
const bin = resolve(repoRoot, option('--bin', process.env.THOU_BIN ?? 'build/thou'));
const staticDir = resolve(repoRoot, option('--static-dir', 'build/static'));
const runs = Number(option('--runs', '3'));
const shotsDir = option('--shots', null);
const printJson = args.includes('--json');

const FAST_3G = {
    offline: false,
    latency: 150,
    downloadThroughput: (1.6 * 1000 * 1000) / 8,
    uploadThroughput: (750 * 1000) / 8,
};
const UNTHROTTLED = { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 };

/* When the watched element first exists and is enabled, in ms since navigation start.
 * Runs before any page script (CDP injects it; the page's CSP does not apply). */
function watchScript(marks) {
    const found = {};
    const check = () => {
        for (const [name, selector] of Object.entries(marks)) {
            if (found[name] === undefined) {
                const el = document.querySelector(selector);
                if (el && !el.disabled) {
                    found[name] = performance.now();
                }
            }
        }
        window.__thouMarks = found;
    };
    new MutationObserver(check).observe(document, {
        subtree: true, childList: true, attributes: true,
    });
}

/** A page whose network traffic is counted, throttled as given. */
async function countedPage(context, conditions, marks) {
    const page = await context.newPage();
    await page.addInitScript(watchScript, marks);
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', conditions);
    const requests = new Map();
    const entry = (id) => {
        if (!requests.has(id)) {
            requests.set(id, { url: '', bytes: 0, finished: false, cached: false, encoding: '' });
        }
        return requests.get(id);
    };
    cdp.on('Network.requestWillBeSent', (e) => {
        entry(e.requestId).url = e.request.url;
    });
    cdp.on('Network.responseReceived', (e) => {
        const r = entry(e.requestId);
        r.status = e.response.status;
        r.cached = Boolean(e.response.fromDiskCache || e.response.fromMemoryCache);
        const headers = Object.fromEntries(Object.entries(e.response.headers)
            .map(([k, v]) => [k.toLowerCase(), v]));
        r.encoding = headers['content-encoding'] ?? '';
    });
    cdp.on('Network.dataReceived', (e) => {
        const r = entry(e.requestId);
        if (!r.finished) {
            r.bytes += e.encodedDataLength;
        }
    });
    cdp.on('Network.loadingFinished', (e) => {
        const r = entry(e.requestId);
        r.finished = true;
        r.bytes = e.encodedDataLength; /* the whole response, headers included */
    });
    page.requests = requests;
    return page;
}

function tally(page) {
    let all = 0;
    let statics = 0;
    let network = 0;
    let cached = 0;
    const encodings = new Set();
    for (const r of page.requests.values()) {
        if (!r.url.startsWith('http')) {
            continue;
        }
        all += r.bytes;
        const path = new URL(r.url).pathname;
        if (!path.startsWith('/api/')) {
            statics += r.bytes;
            if (r.encoding) {
                encodings.add(r.encoding);
            }
        }
        if (r.cached) {
            cached += 1;
        } else {
            network += 1;
        }
    }
    return { all, statics, network, cached, encodings: [...encodings].join('+') || 'none' };
}

/** Wait until every request but the event stream has finished (a page may go on loading
 * after it became usable), then tally again: what the visit costs in all. */
async function settled(page) {
    const deadline = Date.now() + 30000;
    const pending = () => [...page.requests.values()].filter((r) => r.url.startsWith('http')
        && !r.finished && !new URL(r.url).pathname.endsWith('/events'));
    while (pending().length > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
    }
    return tally(page).all;
}

async function waitMark(page, name) {
    const handle = await page.waitForFunction((n) => window.__thouMarks?.[n], name,
        { timeout: 60000, polling: 20 });
    return handle.jsonValue();
}

async function shoot(page, name) {
    if (shotsDir) {
        mkdirSync(shotsDir, { recursive: true });
        await page.screenshot({ path: join(shotsDir, `${name}.png`) });
    }
}

const START_MARKS = { usable: '[data-testid=create-button]' };
const ROOM_MARKS = {
    frame: 'main[data-screen]:not([data-screen=loading])',
    usable: 'main[data-screen=talk]',
};

async function startPage(browser, server, conditions, label) {
    const context = await browser.newContext({ viewport: { width: 360, height: 740 } });
    const first = await countedPage(context, conditions, START_MARKS);
    let filmstrip = null;
    if (shotsDir && label === 'fast3g') {
        /* What the person sees while it loads: a frame every 250 ms. */
        filmstrip = (async () => {
            for (let t = 250; t <= 2000; t += 250) {
                await new Promise((r) => setTimeout(r, 250));
                await shoot(first, `start-${label}-${String(t).padStart(4, '0')}ms`).catch(() => {});
            }
        })();
    }
    await first.goto(`${server.base}/`);
    const firstUsable = await waitMark(first, 'usable');
    const firstTally = tally(first);
    const firstTotal = await settled(first);
    await filmstrip;
    await first.close();
    const again = await countedPage(context, conditions, START_MARKS);
    await again.goto(`${server.base}/`);
    const againUsable = await waitMark(again, 'usable');
    const againTally = tally(again);
    const againTotal = await settled(again);
    await context.close();
    return {
        first: { usable: firstUsable, ...firstTally, total: firstTotal },
        repeat: { usable: againUsable, ...againTally, total: againTotal },
    };
}

/** The creator, unthrottled: returns the link and keeps the page open. */
async function createRoom(browser, server) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.base}/`);
    await page.getByTestId('create-button').click();
    const link = await page.getByTestId('room-link').inputValue();
    await page.getByTestId('enter-link').click();
    await page.locator('main[data-screen=waiting]').waitFor();
    return { context, page, link };
}

async function roomPage(browser, server, conditions) {
    const creator = await createRoom(browser, server);
    const context = await browser.newContext({ viewport: { width: 360, height: 740 } });
    const first = await countedPage(context, conditions, ROOM_MARKS);
    await first.goto(creator.link);
    const firstUsable = await waitMark(first, 'usable');
    const firstFrame = await waitMark(first, 'frame');
    const firstTally = tally(first);
    const firstTotal = await settled(first);
    const path = new URL(creator.link).pathname;
    await first.close(); /* one tab per conversation: the lock must be free again */
    const again = await countedPage(context, conditions, ROOM_MARKS);
    await again.goto(`${server.base}${path}`);
    const againUsable = await waitMark(again, 'usable');
    const againFrame = await waitMark(again, 'frame');
    const againTally = tally(again);
    const againTotal = await settled(again);
    await context.close();
    await creator.context.close();
    return {
        first: { usable: firstUsable, frame: firstFrame, ...firstTally, total: firstTotal },
        repeat: { usable: againUsable, frame: againFrame, ...againTally, total: againTotal },
    };
}

/*
 * What the crypto module costs on the critical path (item 5 of the delivery issue): the
 * time from import('crypto.js') to its ready(), in a page that has not loaded it yet
 * (/healthz), with the files already cached (a repeat visit) and with the CPU slowed
 * 4x as a stand-in for a mid-range phone; and, on a first visit at Fast 3G, the same
 * including the download.
 */
async function cryptoCost(browser, server) {
    const manifestPath = join(staticDir, '.manifest.json');
    const names = JSON.parse(readFileSync(manifestPath, 'utf8'));
    const url = `/${names['js/crypto.js']}`;
    const load = async (page) => page.evaluate(async (u) => {
        const t0 = performance.now();
        const crypto = await import(u);
        await crypto.ready();
        return performance.now() - t0;
    }, url);
    const out = {};
    for (const cpu of [1, 4]) {
        const context = await browser.newContext();
        const warm = await context.newPage();
        await warm.goto(`${server.base}/`);
        await warm.getByTestId('create-button').waitFor();
        await warm.close();
        const times = [];
        for (let i = 0; i < 5; i++) {
            const page = await context.newPage();
            const cdp = await context.newCDPSession(page);
            await cdp.send('Emulation.setCPUThrottlingRate', { rate: cpu });
            await page.goto(`${server.base}/healthz`);
            times.push(await load(page));
            await page.close();
        }
        out[`cached, CPU ÷${cpu}`] = median(times);
        await context.close();
    }
    const times = [];
    for (let i = 0; i < 3; i++) {
        const context = await browser.newContext();
        const page = await context.newPage();
        const cdp = await context.newCDPSession(page);
        await cdp.send('Network.enable');
        await cdp.send('Network.emulateNetworkConditions', FAST_3G);
        await page.goto(`${server.base}/healthz`);
        times.push(await load(page));
        await context.close();
    }
    out['first visit, Fast 3G, CPU ÷1'] = median(times);
    return out;
}

function median(values) {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)];
}

const kb = (n) => `${(n / 1000).toFixed(1)} kB`;
const ms = (n) => (n === undefined ? '–' : `${Math.round(n)} ms`);

async function main() {
    const server = new Server({ bin, staticDir,
        workDir: mkdtempSync(join(tmpdir(), 'thou-pageweight-')) });
    await server.start();
    const browser = await launchBrowser();
    const results = [];
    let crypto = null;
    try {
        /* Only a generated tree has the manifest that names the hashed crypto module. */
        if (existsSync(join(staticDir, '.manifest.json'))) {
            crypto = await cryptoCost(browser, server);
        }
        for (const [label, conditions] of [['fast3g', FAST_3G], ['unthrottled', UNTHROTTLED]]) {
            for (let i = 0; i < runs; i++) {
                const start = await startPage(browser, server, conditions, i === 0 ? label : '');
                const room = await roomPage(browser, server, conditions);
                results.push({ label, run: i, start, room });
            }
        }
    } finally {
        await browser.close();
        await server.stop();
    }
    if (printJson) {
        process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
    }
    if (crypto) {
        console.log('crypto module, import() to ready():');
        for (const [k, v] of Object.entries(crypto)) {
            console.log(`  ${k}: ${ms(v)}`);
        }
    }
    console.log(`static dir: ${staticDir}; ${runs} run(s) each, medians`);
    console.log('| network | page | visit | bytes in all | bytes until usable (all / static) '
        + '| requests (network/cache) | first frame | usable | content-encoding |');
    console.log('|---|---|---|---|---|---|---|---|---|');
    for (const label of ['fast3g', 'unthrottled']) {
        const mine = results.filter((r) => r.label === label);
        for (const pageName of ['start', 'room']) {
            for (const visit of ['first', 'repeat']) {
                const rows = mine.map((r) => r[pageName][visit]);
                const pick = (k) => median(rows.map((r) => r[k]));
                const frame = pageName === 'room' ? ms(pick('frame')) : '–';
                console.log(`| ${label === 'fast3g' ? 'Fast 3G' : 'unthrottled'} | ${pageName} `
                    + `| ${visit} | ${kb(pick('total'))} | ${kb(pick('all'))} / ${kb(pick('statics'))} `
                    + `| ${pick('network')}/${pick('cached')} | ${frame} | ${ms(pick('usable'))} `
                    + `| ${rows[0].encodings} |`);
            }
        }
    }
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
