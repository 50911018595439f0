// script/build-static.mjs on small trees: hashed names, rewritten imports, pages that
// refer to them, compressed copies that decode to the same bytes, and refusals.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import {
    existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, brotliDecompressSync } from 'node:zlib';

const script = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'script',
    'build-static.mjs');

function tree(files) {
    const dir = mkdtempSync(join(tmpdir(), 'thou-build-static-'));
    for (const [rel, content] of Object.entries(files)) {
        mkdirSync(dirname(join(dir, 'src', rel)), { recursive: true });
        writeFileSync(join(dir, 'src', rel), content);
    }
    return dir;
}

function build(dir) {
    return spawnSync(process.execPath, [script, join(dir, 'src'), join(dir, 'out')],
        { encoding: 'utf8' });
}

function manifest(dir) {
    return JSON.parse(readFileSync(join(dir, 'out', '.manifest.json'), 'utf8'));
}

const padding = '// some text that compresses well\n'.repeat(40);
const SOURCES = {
    'index.html': '<!doctype html>\n<link rel="icon" href="/favicon.svg">\n'
        + '<link rel="stylesheet" href="/css/site.css">\n'
        + '<script type="module" src="/js/main.js"></script>\n',
    'favicon.svg': '<svg xmlns="http://www.w3.org/2000/svg"></svg>\n',
    'css/site.css': `body { background: url("../img/dot.svg"); }\n/*${padding}*/\n`,
    'img/dot.svg': '<svg xmlns="http://www.w3.org/2000/svg"><circle r="1"/></svg>\n',
    'js/main.js': `import { a } from './a.js';\nexport * from "./b.js";\n${padding}`
        + 'const later = () => import(\'./lazy.js\');\n',
    'js/a.js': `import sodium from '../vendor/lib.mjs';\nexport const a = 1;\n${padding}`,
    'js/b.js': `export const b = 2;\n${padding}`,
    'js/lazy.js': `export const lazy = 3;\n${padding}`,
    'vendor/lib.mjs': `export default {};${padding}`,
};

test('hashed names, rewritten imports, pages, compressed copies', () => {
    const dir = tree(SOURCES);
    try {
        const run = build(dir);
        assert.equal(run.status, 0, run.stderr);
        const names = manifest(dir);
        for (const rel of Object.keys(SOURCES).filter((f) => !f.endsWith('.html'))) {
            assert.match(names[rel], /\.[0-9a-f]{16}\.[a-z]+$/, rel);
            assert.ok(existsSync(join(dir, 'out', names[rel])), names[rel]);
            /* The plain name is still there, unchanged. */
            assert.equal(readFileSync(join(dir, 'out', rel), 'utf8'), SOURCES[rel]);
        }
        const main = readFileSync(join(dir, 'out', names['js/main.js']), 'utf8');
        assert.ok(main.includes(`from './${names['js/a.js'].slice(3)}'`), main);
        assert.ok(main.includes(`from "./${names['js/b.js'].slice(3)}"`), main);
        assert.ok(main.includes(`import('./${names['js/lazy.js'].slice(3)}')`), main);
        const a = readFileSync(join(dir, 'out', names['js/a.js']), 'utf8');
        assert.ok(a.includes(`from '../${names['vendor/lib.mjs']}'`), a);
        const css = readFileSync(join(dir, 'out', names['css/site.css']), 'utf8');
        assert.ok(css.includes(`url("../${names['img/dot.svg']}")`), css);

        const html = readFileSync(join(dir, 'out', 'index.html'), 'utf8');
        assert.ok(html.includes(`href="/${names['favicon.svg']}"`), html);
        assert.ok(html.includes(`href="/${names['css/site.css']}"`), html);
        assert.ok(html.includes(`src="/${names['js/main.js']}"`), html);
        for (const dep of ['js/a.js', 'js/b.js', 'vendor/lib.mjs']) {
            assert.ok(html.includes(`<link rel="modulepreload" href="/${names[dep]}">`), dep);
        }
        /* What the page loads only later with import() comes last, at low priority. */
        const lazy = `<link rel="modulepreload" href="/${names['js/lazy.js']}" fetchpriority="low">`;
        assert.ok(html.includes(lazy), html);
        assert.ok(html.indexOf(lazy) > html.indexOf(names['js/b.js']), html);
        assert.ok(!html.includes('modulepreload" href="/' + names['js/main.js']), html);

        for (const rel of [names['js/main.js'], 'index.html', names['css/site.css']]) {
            const plain = readFileSync(join(dir, 'out', rel));
            assert.deepEqual(gunzipSync(readFileSync(join(dir, 'out', `${rel}.gz`))), plain, rel);
            if (existsSync(join(dir, 'out', `${rel}.br`))) {
                assert.deepEqual(brotliDecompressSync(readFileSync(join(dir, 'out', `${rel}.br`))),
                    plain, rel);
            }
        }
        /* A copy that would not be smaller is not kept. */
        assert.ok(!existsSync(join(dir, 'out', `${names['img/dot.svg']}.gz`)));
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
});

test('a changed dependency renames every module that imports it, and nothing else', () => {
    const dir = tree(SOURCES);
    try {
        assert.equal(build(dir).status, 0);
        const before = manifest(dir);
        const inode = statSync(join(dir, 'out')).ino;
        writeFileSync(join(dir, 'src', 'vendor', 'lib.mjs'), `export default { v: 2 };${padding}`);
        assert.equal(build(dir).status, 0);
        const after = manifest(dir);
        for (const changed of ['vendor/lib.mjs', 'js/a.js', 'js/main.js']) {
            assert.notEqual(after[changed], before[changed], changed);
        }
        for (const same of ['js/b.js', 'js/lazy.js', 'css/site.css', 'favicon.svg']) {
            assert.equal(after[same], before[same], same);
        }
        /* The output is replaced as a whole: the old names are gone, but the directory
         * is the same one, for a server that holds it open. */
        assert.ok(!existsSync(join(dir, 'out', before['js/main.js'])));
        assert.equal(statSync(join(dir, 'out')).ino, inode);
        /* Same sources, same names. */
        assert.equal(build(dir).status, 0);
        assert.deepEqual(manifest(dir), after);
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
});

test('refuses an import cycle and a missing module', () => {
    const cycle = tree({
        'index.html': '<script type="module" src="/x.js"></script>',
        'x.js': "import './y.js';\n",
        'y.js': "import './x.js';\n",
    });
    const missing = tree({ 'x.js': "import { a } from './nowhere.js';\n" });
    try {
        const a = build(cycle);
        assert.notEqual(a.status, 0);
        assert.match(a.stderr, /import cycle: x\.js -> y\.js -> x\.js/);
        const b = build(missing);
        assert.notEqual(b.status, 0);
        assert.match(b.stderr, /x\.js imports '\.\/nowhere\.js'/);
    } finally {
        rmSync(cycle, { recursive: true, force: true });
        rmSync(missing, { recursive: true, force: true });
    }
});

test('the real client builds, and its pages refer only to hashed names', () => {
    const dir = mkdtempSync(join(tmpdir(), 'thou-build-static-'));
    try {
        const source = resolve(dirname(script), '..', 'static');
        if (!existsSync(join(source, 'vendor'))) {
            execFileSync('bash', [resolve(dirname(script), 'vendor-js')]);
        }
        execFileSync(process.execPath, [script, source, join(dir, 'out')]);
        for (const page of ['index.html', 'room.html']) {
            const html = readFileSync(join(dir, 'out', page), 'utf8');
            const refs = [...html.matchAll(/(?:src|href)="(\/[^"]+)"/g)].map((m) => m[1]);
            assert.ok(refs.length >= 3, page);
            for (const ref of refs) {
                assert.match(ref, /\.[0-9a-f]{16}\.[a-z]+$/, `${page}: ${ref}`);
                assert.ok(existsSync(join(dir, 'out', ref)), ref);
            }
        }
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
});
