// Two thou instances on one PostgreSQL database, one partner's browser on each: they pair,
// answer, reflect, confirm and note as if on one server; then the instance of one partner
// dies (SIGKILL) and that browser carries on through the other instance. A reaches the
// instances through a small proxy in this file (one origin, the first instance while it
// answers, else the second), as it would through nginx; B talks to the second directly.
//
//   THOU_TEST_PG_URL=postgresql://… THOU_BIN=build/thou node tests/browser/cluster.mjs
//
// script/test provides THOU_TEST_PG_URL (a throwaway cluster); without it the test is
// skipped. Exits non-zero on any failure.

import { execFileSync } from 'node:child_process';
import { createServer, request } from 'node:http';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { Server, launchBrowser, waitScreen, check, repoRoot, dumpOpenPages } from './harness.mjs';
import {
    marker, createConversation, openLink, compose, confirmHeard, seeEntry, welcomed,
} from './conversation.mjs';

/** A new empty database in the test cluster; its URL. */
function newDatabase(clusterUrl) {
    const name = `thou_browser_${randomBytes(6).toString('hex')}`;
    execFileSync('psql', [clusterUrl, '-qc', `CREATE DATABASE ${name}`]);
    return clusterUrl.replace(/\/[^/?]*$/, `/${name}`);
}

/** A reverse proxy on a free port: each request to the first upstream that accepts it. */
async function failoverProxy(upstreams) {
    const proxy = createServer((req, res) => {
        const body = [];
        req.on('data', (chunk) => body.push(chunk));
        req.on('end', () => {
            const tryAt = (i) => {
                const forward = request({
                    host: '127.0.0.1', port: upstreams[i].port, method: req.method,
                    path: req.url, headers: req.headers,
                }, (reply) => {
                    res.writeHead(reply.statusCode, reply.headers);
                    reply.pipe(res);
                    reply.on('aborted', () => res.destroy());
                    reply.on('error', () => res.destroy());
                });
                forward.on('error', () => {
                    if (!res.headersSent && i + 1 < upstreams.length) {
                        tryAt(i + 1);
                    } else {
                        res.destroy();
                    }
                });
                forward.end(Buffer.concat(body));
            };
            tryAt(0);
        });
    });
    await new Promise((res) => proxy.listen(0, '127.0.0.1', res));
    return { proxy, base: `http://127.0.0.1:${proxy.address().port}` };
}

/** The same conversation link, served by another instance. */
function onInstance(link, server) {
    return link.replace(/^https?:\/\/127\.0\.0\.1:\d+/, server.base);
}

async function partnersOnTwoInstances({ browser, one, two, front }) {
    const problems = [];
    const { page: a, link } = await createConversation(browser, front, { problems });
    const b = await openLink(browser, onInstance(link, two), { problems });
    await waitScreen(a, 'talk');
    await welcomed(b);
    check(b.url().startsWith(two.base), 'B is on the second instance');
    const codeA = await a.getByTestId('safety-code').textContent();
    const codeB = await b.getByTestId('safety-code').textContent();
    check(codeA === codeB, 'both see the same safety code across instances');

    /* One half of the first question: A answers on one, B reflects on two, A confirms. */
    const answer = marker('answer by A on one');
    await compose(a, 'answer', answer);
    await seeEntry(b, answer, 5000);
    const reflection = marker('heard by B on two');
    await compose(b, 'reflect', reflection);
    await seeEntry(a, reflection, 5000);
    await a.getByTestId('confirm-heard-button').waitFor();
    await confirmHeard(a);

    /* A note each way. */
    const noteB = marker('note from B on two');
    await b.getByTestId('note-input').fill(noteB);
    await b.getByTestId('note-send').click();
    await seeEntry(a, noteB, 5000);

    /* A's instance dies mid-conversation. A's stream reconnects through the proxy to the
     * other instance with Last-Event-ID: B's next words reach A, and A's reach B. */
    one.proc.kill('SIGKILL');
    await one.exited;
    const later = marker('note from B after the failover');
    await b.getByTestId('note-input').fill(later);
    await b.getByTestId('note-send').click();
    await seeEntry(a, later, 15000);
    const reply = marker('note from A after the failover');
    await a.getByTestId('note-input').fill(reply);
    await a.getByTestId('note-send').click();
    await seeEntry(b, reply, 15000);
    /* A reload finds the whole conversation, each entry once. */
    await a.reload();
    await waitScreen(a, 'talk');
    for (const text of [answer, reflection, noteB, later, reply]) {
        await seeEntry(a, text, 5000);
        const count = (await a.locator('[data-testid=entry-text]').allTextContents())
            .filter((t) => t === text).length;
        check(count === 1, `"${text}" shown ${count} times`);
    }
    check(problems.length === 0, `no page problems: ${problems.join('; ')}`);
    await a.context().close();
    await b.context().close();
}

async function main() {
    const clusterUrl = process.env.THOU_TEST_PG_URL;
    if (!clusterUrl) {
        console.log('THOU_TEST_PG_URL is not set: no PostgreSQL cluster (script/test starts one); '
            + 'skipped');
        process.exit(0);
    }
    const bin = resolve(repoRoot, process.env.THOU_BIN ?? 'build/thou');
    if (!existsSync(bin)) {
        console.error(`no thou binary at ${bin}: build it, or set THOU_BIN`);
        process.exit(2);
    }
    const storeUrl = newDatabase(clusterUrl);
    const one = new Server({ bin, extraArgs: ['--store-url', storeUrl] });
    const two = new Server({ bin, extraArgs: ['--store-url', storeUrl] });
    await one.start();
    await two.start();
    const { proxy, base } = await failoverProxy([one, two]);
    const front = { base };
    const browser = await launchBrowser();
    let failed = false;
    const t0 = Date.now();
    try {
        await partnersOnTwoInstances({ browser, one, two, front });
        console.log(`ok   partners on two instances, one killed (${((Date.now() - t0) / 1000)
            .toFixed(1)} s)`);
    } catch (error) {
        failed = true;
        console.log(`FAIL partners on two instances\n     ${
            String(error?.stack ?? error).split('\n').slice(0, 6).join('\n     ')}`);
        await dumpOpenPages('cluster');
    } finally {
        await browser.close().catch(() => {});
        proxy.close();
        proxy.closeAllConnections?.();
        await one.stop();
        await two.stop();
    }
    if (failed) {
        console.log(`kept for inspection: ${one.workDir}, ${two.workDir}`);
    } else {
        rmSync(one.workDir, { recursive: true, force: true });
        rmSync(two.workDir, { recursive: true, force: true });
    }
    console.log(failed ? '0 passed, 1 failed' : '1 passed, 0 failed');
    process.exit(failed ? 1 : 0);
}

main().catch((error) => {
    console.error(error);
    console.log('0 passed, 1 failed');
    process.exit(1);
});
