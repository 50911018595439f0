// Shared pieces of the browser tests: start/stop a real thou, launch Debian's Chromium
// through playwright-core (never a downloaded browser), pages that fail the test on
// uncaught errors or CSP violations, waiting helpers and screenshots.

import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, openSync, closeSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const artifactsDir = join(repoRoot, 'tests', 'browser', 'artifacts');

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 360, height: 740 };
const TIMEOUT = 15000;

export function fail(message) {
    throw new Error(message);
}

export function check(condition, message) {
    if (!condition) {
        fail(message);
    }
}

/* ---------------------------------------------------------------- the server */

/** The environment without THOU_* settings: thou refuses unknown ones, and the config
 *  file and flags given here should decide alone. */
function serverEnv() {
    return Object.fromEntries(Object.entries(process.env)
        .filter(([name]) => !name.startsWith('THOU_')));
}

/** A thou process on 127.0.0.1 with its own data dir and log file; with tls
 *  ({cert, key}: PEM file paths) it serves HTTPS. */
export class Server {
    constructor({ bin, workDir, tls = null, staticDir, config = 'config/thou.json', extraArgs = [] }) {
        this.bin = bin;
        this.config = config;
        this.extraArgs = extraArgs; /* more flags, e.g. --store-url for a shared database */
        this.tls = tls;
        /* The served tree: the sources by default, or what the build generates from them
         * (THOU_STATIC_DIR=build/static: hashed names, precompressed copies). */
        this.staticDir = staticDir ?? process.env.THOU_STATIC_DIR ?? 'static';
        this.workDir = workDir ?? mkdtempSync(join(tmpdir(), 'thou-browser-'));
        this.dataDir = join(this.workDir, 'data');
        this.logPath = join(this.workDir, 'thou.log');
        mkdirSync(this.dataDir, { recursive: true });
        this.port = 0;
        this.proc = null;
    }

    get base() {
        return `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.port}`;
    }

    /** Start; port 0 the first time (read from the log), the same port on restarts. */
    async start() {
        const logFd = openSync(this.logPath, 'a');
        const logStart = readFileSync(this.logPath).length;
        this.proc = spawn(this.bin, [
            'serve', '--config', this.config, '--port', String(this.port),
            '--data-dir', this.dataDir, '--static-dir', this.staticDir,
            '--questions-dir', 'config/questions',
            ...(this.tls ? ['--tls-cert', this.tls.cert, '--tls-key', this.tls.key] : []),
            ...this.extraArgs,
        ], { cwd: repoRoot, stdio: ['ignore', logFd, logFd], env: serverEnv() });
        closeSync(logFd);
        const exited = new Promise((res) => this.proc.once('exit', (code) => res(code)));
        this.exited = exited;
        const deadline = Date.now() + 10000;
        for (;;) {
            const log = readFileSync(this.logPath).subarray(logStart).toString('utf8');
            const match = /listening on https?:\/\/127\.0\.0\.1:(\d+)/.exec(log);
            if (match) {
                this.port = Number(match[1]);
                return;
            }
            if (this.proc.exitCode !== null || Date.now() > deadline) {
                fail(`thou did not start (exit ${this.proc.exitCode}); log:\n${log}`);
            }
            await new Promise((r) => setTimeout(r, 50));
        }
    }

    async stop() {
        if (!this.proc || this.proc.exitCode !== null) {
            return;
        }
        this.proc.kill('SIGTERM');
        const timer = setTimeout(() => this.proc.kill('SIGKILL'), 8000);
        await this.exited;
        clearTimeout(timer);
    }
}

/* ---------------------------------------------------------------- the browser */

/** Chromium; trustCertificates: accept the self-signed certificate of a test server. */
export async function launchBrowser({ trustCertificates = false } = {}) {
    return chromium.launch({
        executablePath: '/usr/bin/chromium',
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
            '--disable-background-networking', '--disable-component-update', '--disable-sync',
            ...(trustCertificates ? ['--ignore-certificate-errors'] : [])],
    });
}

/**
 * A page in a fresh context. Uncaught exceptions and CSP violations are collected in
 * page.problems; the runner fails the test if any were seen.
 */
export const openPages = new Set();

export async function newPage(browser, viewport = DESKTOP, problems = []) {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    openPages.add(page);
    page.on('close', () => openPages.delete(page));
    page.setDefaultTimeout(TIMEOUT);
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
        const text = m.text();
        if (/Content Security Policy|Refused to/i.test(text)
            || (m.type() === 'error' && /^thou:/.test(text))) {
            problems.push(`console: ${text}`);
        }
    });
    page.problems = problems;
    return page;
}

/** The page's conversation screen name (data-screen of <main>). */
export function screen(page) {
    return page.getByTestId('screen').getAttribute('data-screen');
}

export async function waitScreen(page, name, timeout = TIMEOUT) {
    await page.locator(`main[data-screen="${name}"]`).waitFor({ timeout });
}

/** Wait until `fn` returns truthy (polling). */
export async function until(fn, what, timeout = TIMEOUT) {
    const deadline = Date.now() + timeout;
    let last;
    for (;;) {
        try {
            last = await fn();
            if (last) {
                return last;
            }
        } catch (e) {
            last = e;
        }
        if (Date.now() > deadline) {
            fail(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
        }
        await new Promise((r) => setTimeout(r, 100));
    }
}

/** Texts of all entries with data-testid=entry-text inside `scope` (a locator or page). */
export async function entryTexts(scope) {
    return scope.locator('[data-testid=entry-text]').allTextContents();
}

/** Screenshots of the page at phone and desktop size, into tests/browser/artifacts/. */
export async function shots(page, name) {
    mkdirSync(artifactsDir, { recursive: true });
    const original = page.viewportSize();
    for (const [label, size] of [['360x740', PHONE], ['1280x800', DESKTOP]]) {
        await page.setViewportSize(size);
        await page.waitForTimeout(60);
        await page.screenshot({ path: join(artifactsDir, `${name}-${label}.png`), fullPage: true });
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth
            - document.documentElement.clientWidth);
        check(overflow <= 0, `${name} at ${label} scrolls sideways by ${overflow} px`);
    }
    await page.setViewportSize(original);
}

/** After a failure: a screenshot of every page still open, then close them. */
export async function dumpOpenPages(testName) {
    mkdirSync(artifactsDir, { recursive: true });
    const slug = testName.replace(/[^a-z0-9]+/gi, '-').toLowerCase();
    let i = 0;
    for (const page of [...openPages]) {
        i += 1;
        try {
            await page.screenshot({ path: join(artifactsDir, `fail-${slug}-${i}.png`),
                fullPage: true });
        } catch {
            /* page already gone */
        }
        await page.context().close().catch(() => {});
    }
    openPages.clear();
}
