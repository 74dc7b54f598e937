#!/usr/bin/env node
// The npm registry reached from our machines lacks some platform-specific optional packages
// (darwin/win32/... builds of native modules). `npm install` then leaves them out of
// package-lock.json, and `npm ci` refuses the lockfile ("Missing: X@ from lock file").
// This adds the entries a complete lockfile would hold (version, optional, os/cpu), so `npm ci`
// accepts it and skips them on a platform they are not for. Run it after any `npm install`.
import { readFileSync, writeFileSync } from 'node:fs';

// Usage: node scripts/complete-lockfile.mjs [--check] [package-lock.json]
const check = process.argv.includes('--check');
const file = process.argv.slice(2).find((a) => !a.startsWith('--')) ?? 'package-lock.json';
const lock = JSON.parse(readFileSync(file, 'utf8'));
const packages = lock.packages;

const OS = ['darwin', 'linux', 'win32', 'freebsd', 'openbsd', 'netbsd', 'sunos', 'aix', 'android', 'openharmony'];
const CPU = ['arm64', 'x64', 'arm', 'ia32', 'ppc64', 's390x', 'riscv64', 'loong64', 'mips64el', 'wasm32'];

function resolves(from, name) {
  // Node's lookup: <from>/node_modules/<name>, then each ancestor's node_modules.
  let dir = from;
  for (;;) {
    const candidate = `${dir ? `${dir}/` : ''}node_modules/${name}`;
    if (packages[candidate]) return true;
    if (!dir) return false;
    const i = dir.lastIndexOf('/node_modules/');
    dir = i === -1 ? '' : dir.slice(0, i);
  }
}

let added = 0;
for (const [path, meta] of Object.entries(packages)) {
  for (const [name, range] of Object.entries(meta.optionalDependencies ?? {})) {
    if (resolves(path, name)) continue;
    const target = `node_modules/${name}`;
    const parts = name.toLowerCase().split(/[-/@._]/);
    const entry = { version: String(range).replace(/^[\^~=]/, ''), optional: true };
    if (meta.dev) entry.dev = true;
    const os = OS.find((o) => parts.includes(o) || (o === 'win32' && parts.includes('win')));
    const cpu = CPU.find((c) => parts.includes(c));
    if (os) entry.os = [os];
    if (cpu) entry.cpu = [cpu];
    packages[target] = entry;
    added++;
  }
}
if (check) {
  if (added > 0)
    console.error(
      `complete-lockfile: ${file} lacks ${added} optional platform entries; run node scripts/complete-lockfile.mjs`,
    );
  process.exit(added > 0 ? 1 : 0);
}
writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`complete-lockfile: added ${added} optional platform entr${added === 1 ? 'y' : 'ies'}`);
