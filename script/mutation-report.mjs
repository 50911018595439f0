// Summarise a Stryker JSON report (reports/mutation/mutation.json): per file the mutants
// killed, timed out (a test hung on them: caught too, as Stryker counts it), survived and
// not covered by any test, and the score (caught / all); then every survivor with its
// place and replacement. Used by script/mutate.
//
//   node script/mutation-report.mjs [report.json] [file-filter]

import { readFileSync } from 'node:fs';

const [path = 'reports/mutation/mutation.json', filter = ''] = process.argv.slice(2);
const report = JSON.parse(readFileSync(path, 'utf8'));

const CAUGHT = new Set(['Killed', 'Timeout']);
const MISSED = new Set(['Survived', 'NoCoverage']);
const rows = [];
const survivors = [];
let caughtAll = 0;
let validAll = 0;

for (const [file, data] of Object.entries(report.files).sort()) {
    if (!file.includes(filter)) {
        continue;
    }
    const counts = { caught: 0, timeout: 0, survived: 0, noCoverage: 0 };
    const lines = data.source.split('\n');
    for (const m of data.mutants) {
        if (CAUGHT.has(m.status)) {
            counts.caught += 1;
            counts.timeout += m.status === 'Timeout' ? 1 : 0;
        } else if (MISSED.has(m.status)) {
            counts[m.status === 'Survived' ? 'survived' : 'noCoverage'] += 1;
            const { line, column } = m.location.start;
            survivors.push(`${file}:${line}:${column} ${m.status} ${m.mutatorName}: `
                + `${lines[line - 1].trim().slice(0, 70)}  =>  `
                + `${(m.replacement ?? '').replace(/\s+/g, ' ').slice(0, 50)}`);
        }
    }
    const valid = counts.caught + counts.survived + counts.noCoverage;
    if (valid === 0) {
        continue;
    }
    caughtAll += counts.caught;
    validAll += valid;
    rows.push([file, counts.caught, counts.timeout, counts.survived, counts.noCoverage, valid,
        (100 * counts.caught / valid).toFixed(1)]);
}

if (survivors.length) {
    console.log('\nsurviving mutants:');
    survivors.forEach((s) => console.log(`  ${s}`));
}
console.log('\nfile                          caught (timeout) survived no-cov   all  score %');
for (const [file, caught, timeout, survived, noCov, valid, score] of rows) {
    console.log(`${file.padEnd(30)}${String(caught).padStart(6)}${`(${timeout})`.padStart(10)}`
        + `${String(survived).padStart(9)}${String(noCov).padStart(7)}${String(valid).padStart(6)}`
        + `${score.padStart(9)}`);
}
const total = validAll ? (100 * caughtAll / validAll).toFixed(1) : '0.0';
console.log(`${'all'.padEnd(30)}${String(caughtAll).padStart(6)}${''.padStart(26)}`
    + `${String(validAll).padStart(6)}${total.padStart(9)}`);
