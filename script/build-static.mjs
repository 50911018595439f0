#!/usr/bin/env node
// Generate the files thou serves from the browser client's sources, ready for slow networks:
//
//   - every file except the HTML pages also gets a content-hashed name (js/start.<hash>.js),
//     its hash taken over its final bytes, so a changed file always gets a new name and an
//     unchanged one keeps it across releases; the server lets browsers keep these for a year;
//   - module imports (static and dynamic, relative or root-relative) are rewritten to the
//     hashed names, so a module's hash covers everything it loads (dependencies are hashed
//     first; an import cycle is an error, since no name could then cover its own content);
//   - the HTML pages refer to the hashed names and list every module they will load as
//     <link rel="modulepreload">, so the browser fetches the whole module graph at once
//     instead of one round trip per level of imports;
//   - text files get a gzip -9 copy (name.gz) and, when Debian's brotli is installed and
//     it is smaller still, a brotli -q 11 copy (name.br), served by content negotiation;
//     a copy that is not smaller than what it compresses is not kept.
//
// The sources stay as they are; the plain names are copied too, so every URL that worked
// against static/ still works against the output. The output also holds .manifest.json
// (plain name -> hashed name; hidden, so never served).
//
// Usage: script/build-static.mjs SOURCE_DIR OUTPUT_DIR
// The output directory's contents are replaced as a whole.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
    existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync,
} from 'node:fs';
import { dirname, join, posix, resolve } from 'node:path';

/* Must match THOU_STATIC_HASH_LEN in include/thou/static_files.h. */
const HASH_LEN = 16;
const COMPRESSIBLE = /\.(html|js|mjs|css|svg|json|txt|map|webmanifest|wasm)$/;
const MODULE = /\.(js|mjs)$/;

function die(message) {
    process.stderr.write(`build-static: ${message}\n`);
    process.exit(1);
}

const [sourceArg, outArg] = process.argv.slice(2);
if (!sourceArg || !outArg) {
    die('usage: build-static.mjs SOURCE_DIR OUTPUT_DIR');
}
const sourceDir = resolve(sourceArg);
const outDir = resolve(outArg);
if (!existsSync(sourceDir) || !statSync(sourceDir).isDirectory()) {
    die(`no source directory '${sourceArg}'`);
}

function hasProgram(name) {
    try {
        execFileSync(name, ['--version'], { stdio: 'ignore' });
        return true;
    } catch {
        return false;
    }
}
if (!hasProgram('gzip')) {
    die('gzip is missing (Debian package gzip)');
}
const haveBrotli = hasProgram('brotli');

/** Relative paths (posix) of every file below dir, hidden entries skipped. */
function walk(dir, prefix = '') {
    const found = [];
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
        if (entry.name.startsWith('.')) {
            continue;
        }
        const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
        if (entry.isDirectory()) {
            found.push(...walk(join(dir, entry.name), rel));
        } else if (entry.isFile()) {
            found.push(rel);
        }
    }
    return found.sort();
}

const files = walk(sourceDir);
const fileSet = new Set(files);
const source = new Map(files.map((rel) => [rel, readFileSync(join(sourceDir, rel))]));

/** The tree-relative path a reference from file `from` names, or null if not in the tree. */
function target(from, spec) {
    if (!(spec.startsWith('./') || spec.startsWith('../') || spec.startsWith('/'))) {
        return null; /* bare specifiers, URLs, data: and the like are not ours */
    }
    const clean = spec.split(/[?#]/)[0];
    const joined = clean.startsWith('/') ? clean.slice(1) : posix.join(posix.dirname(from), clean);
    const rel = posix.normalize(joined);
    return fileSet.has(rel) ? rel : null;
}

/** The reference to rel as seen from file `from`, in the style of the original spec. */
function reference(from, spec, rel) {
    if (spec.startsWith('/')) {
        return `/${rel}`;
    }
    let out = posix.relative(posix.dirname(from), rel);
    if (!out.startsWith('.')) {
        out = `./${out}`;
    }
    return out;
}

/* Module specifiers: `from '...'` (import and export), `import '...'` and `import('...')`. */
const SPECIFIER = /(\bfrom\s*|\bimport\s*\(?\s*)(["'])([^"'\n]+)\2/g;
/* Stylesheet references: url(...) and @import '...'. */
const CSS_URL = /(url\(\s*)(["']?)([^"')\s]+)\2(\s*\))/g;

/** The files rel refers to; with eagerOnly, a module's static imports alone (no import()). */
function references(rel, text, { eagerOnly = false } = {}) {
    const deps = [];
    const pattern = MODULE.test(rel) ? SPECIFIER : rel.endsWith('.css') ? CSS_URL : null;
    if (!pattern) {
        return deps;
    }
    for (const m of text.matchAll(pattern)) {
        if (eagerOnly && m[1].includes('(')) {
            continue;
        }
        const dep = target(rel, m[3]);
        if (dep && dep !== rel) {
            deps.push(dep);
        } else if (!dep && pattern === SPECIFIER && /^\.{1,2}\/.*\.m?js$/.test(m[3])) {
            /* A page that imports a missing module fails in the browser; fail here first. */
            die(`${rel} imports '${m[3]}', which is not in ${sourceArg}` +
                `${m[3].includes('vendor/') ? ' (run script/vendor-js)' : ''}`);
        }
    }
    return deps;
}

const hashed = new Map(); /* plain rel -> hashed rel */
const output = new Map(); /* rel in output -> bytes */

function hashedName(rel, bytes) {
    const hash = createHash('sha256').update(bytes).digest('hex').slice(0, HASH_LEN);
    const slash = rel.lastIndexOf('/');
    const dot = rel.lastIndexOf('.');
    return dot > slash + 1 ? `${rel.slice(0, dot)}.${hash}${rel.slice(dot)}` : `${rel}.${hash}`;
}

function rewrite(rel, text) {
    const swap = (whole, spec, make) => {
        const dep = target(rel, spec);
        return dep && hashed.has(dep) ? make(reference(rel, spec, hashed.get(dep))) : whole;
    };
    if (MODULE.test(rel)) {
        return text.replace(SPECIFIER, (whole, lead, quote, spec) =>
            swap(whole, spec, (ref) => `${lead}${quote}${ref}${quote}`));
    }
    return text.replace(CSS_URL, (whole, lead, quote, spec, tail) =>
        swap(whole, spec, (ref) => `${lead}${quote}${ref}${quote}${tail}`));
}

/* Hash every non-HTML file after the files it references (depth first). */
const visiting = new Set();
function hashFile(rel, chain = []) {
    if (hashed.has(rel)) {
        return;
    }
    if (visiting.has(rel)) {
        die(`import cycle: ${[...chain, rel].join(' -> ')}; hashed names need an acyclic graph`);
    }
    visiting.add(rel);
    const bytes = source.get(rel);
    const textual = MODULE.test(rel) || rel.endsWith('.css');
    let final = bytes;
    if (textual) {
        const text = bytes.toString('utf8');
        for (const dep of references(rel, text)) {
            if (!dep.endsWith('.html')) {
                hashFile(dep, [...chain, rel]);
            }
        }
        final = Buffer.from(rewrite(rel, text), 'utf8');
    }
    visiting.delete(rel);
    const name = hashedName(rel, final);
    hashed.set(rel, name);
    output.set(name, final);
}

for (const rel of files) {
    output.set(rel, source.get(rel)); /* the plain name, unchanged */
    if (!rel.endsWith('.html')) {
        hashFile(rel);
    }
}

/** Every module a module loads, itself included; with eagerOnly, only those it cannot
 * run without (static imports, transitively), not those it loads later with import(). */
function moduleGraph(rel, eagerOnly, seen = new Set()) {
    if (!seen.has(rel)) {
        seen.add(rel);
        for (const dep of references(rel, source.get(rel).toString('utf8'), { eagerOnly })) {
            if (MODULE.test(dep)) {
                moduleGraph(dep, eagerOnly, seen);
            }
        }
    }
    return seen;
}

const ATTRIBUTE = /(\s(?:src|href)=)(["'])([^"']+)\2/g;
const MODULE_SCRIPT = /<script\b[^>]*\btype=(["'])module\1[^>]*\bsrc=(["'])([^"']+)\2[^>]*>\s*<\/script>/g;

function rewriteHtml(rel, text) {
    /* Preloads first, while the references still carry their plain names. */
    const withPreloads = text.replace(MODULE_SCRIPT, (tag, q1, q2, src) => {
        const entry = target(rel, src);
        if (!entry) {
            return tag;
        }
        /* The entry module itself is loaded by the tag; list what it imports: first what
         * it cannot run without, largest first so the biggest download starts earliest,
         * then what it loads later with import(), at low priority so that it does not
         * hold the rest up. */
        const bySize = (a, b) => source.get(b).length - source.get(a).length;
        const eager = moduleGraph(entry, true);
        const later = [...moduleGraph(entry, false)].filter((dep) => !eager.has(dep));
        eager.delete(entry);
        const links = [...eager].sort(bySize)
            .map((dep) => `<link rel="modulepreload" href="/${dep}">\n`)
            .concat(later.sort(bySize).map((dep) =>
                `<link rel="modulepreload" href="/${dep}" fetchpriority="low">\n`));
        return `${links.join('')}${tag}`;
    });
    return withPreloads.replace(ATTRIBUTE, (whole, lead, quote, ref) => {
        const dep = target(rel, ref);
        if (!dep || !hashed.has(dep)) {
            return whole;
        }
        return `${lead}${quote}${reference(rel, ref, hashed.get(dep))}${quote}`;
    });
}

for (const rel of files.filter((f) => f.endsWith('.html'))) {
    output.set(rel, Buffer.from(rewriteHtml(rel, source.get(rel).toString('utf8')), 'utf8'));
}

/* Compress once per distinct content: a plain copy often equals its hashed twin. */
const compressed = new Map();
function compress(bytes) {
    const key = createHash('sha256').update(bytes).digest('hex');
    if (!compressed.has(key)) {
        const gz = execFileSync('gzip', ['-9', '-n', '-c'], { input: bytes, maxBuffer: 1 << 28 });
        const br = haveBrotli
            ? execFileSync('brotli', ['-q', '11', '-c'], { input: bytes, maxBuffer: 1 << 28 })
            : null;
        compressed.set(key, { gz, br });
    }
    return compressed.get(key);
}

const staging = `${outDir}.new`;
rmSync(staging, { recursive: true, force: true });
const manifest = {};
let plainBytes = 0;
let gzBytes = 0;
let brBytes = 0;
for (const [rel, bytes] of output) {
    const path = join(staging, rel);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, bytes);
    if (!COMPRESSIBLE.test(rel)) {
        continue;
    }
    const { gz, br } = compress(bytes);
    const isHashed = !fileSet.has(rel) || rel.endsWith('.html');
    let best = bytes.length;
    if (gz.length < bytes.length) {
        writeFileSync(`${path}.gz`, gz);
        best = gz.length;
    }
    if (br && br.length < best) {
        writeFileSync(`${path}.br`, br);
    }
    if (isHashed) {
        plainBytes += bytes.length;
        gzBytes += Math.min(gz.length, bytes.length);
        brBytes += Math.min(br ? br.length : Infinity, gz.length, bytes.length);
    }
}
for (const [rel, name] of hashed) {
    manifest[rel] = name;
}
writeFileSync(join(staging, '.manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
/* Replace the contents, not the directory: a server started on it holds the directory
 * open and would otherwise go on serving a deleted one. */
mkdirSync(outDir, { recursive: true });
for (const entry of readdirSync(outDir)) {
    rmSync(join(outDir, entry), { recursive: true, force: true });
}
for (const entry of readdirSync(staging)) {
    renameSync(join(staging, entry), join(outDir, entry));
}
rmSync(staging, { recursive: true, force: true });

const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
process.stdout.write(`build-static: ${hashed.size} hashed files and ${files.length} plain names -> ` +
    `${outDir}; pages and hashed files: ${kb(plainBytes)}, gzip ${kb(gzBytes)}` +
    `${haveBrotli ? `, brotli ${kb(brBytes)}` : ' (brotli not installed)'}\n`);
