/**
 * Summarises a .cpuprofile written by `node --cpu-prof`: self time per function, largest first.
 *
 *   node benchmarks/micro/cpuprofile-top.mjs /tmp/prof/x.cpuprofile [--top 25] [--total]
 *
 * Self time is the sampled time spent in the function itself (not in what it calls); functions
 * with the same name and location are merged. --total adds inclusive time (self + callees).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';

const args = process.argv.slice(2);
const file = args.find((a) => !a.startsWith('--'));
if (file === undefined) {
  process.stderr.write('usage: cpuprofile-top.mjs FILE.cpuprofile [--top N] [--total]\n');
  process.exit(2);
}
const topIndex = args.indexOf('--top');
const top = topIndex >= 0 ? Number(args[topIndex + 1]) : 25;
const withTotal = args.includes('--total');

const profile = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n.id);

const selfUs = new Map();
let totalUs = 0;
for (let i = 0; i < profile.samples.length; i++) {
  const dt = profile.timeDeltas[i] ?? 0;
  const id = profile.samples[i];
  selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
  totalUs += dt;
}

function keyOf(node) {
  const f = node.callFrame;
  const name = f.functionName || '(anonymous)';
  if (!f.url) return name;
  const where = f.url.replace(/^file:\/\//, '');
  const short = where.includes('node_modules')
    ? where.slice(where.lastIndexOf('node_modules/') + 'node_modules/'.length)
    : path.relative(process.cwd(), where);
  return `${name}  ${short}:${f.lineNumber + 1}`;
}

const rows = new Map();
for (const [id, us] of selfUs) {
  const key = keyOf(byId.get(id));
  const row = rows.get(key) ?? { self: 0, total: 0 };
  row.self += us;
  rows.set(key, row);
}
if (withTotal) {
  // Inclusive time: each sample counts once for every distinct function on its stack.
  for (const [id, us] of selfUs) {
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const key = keyOf(byId.get(cur));
      if (seen.has(key)) continue;
      seen.add(key);
      const row = rows.get(key) ?? { self: 0, total: 0 };
      row.total += us;
      rows.set(key, row);
    }
  }
}

const sorted = [...rows].sort((a, b) => b[1].self - a[1].self).slice(0, top);
const pct = (us) => `${((100 * us) / totalUs).toFixed(1).padStart(5)}%`;
process.stdout.write(`${file}: ${(totalUs / 1e6).toFixed(2)} s sampled\n`);
process.stdout.write(`${'self'.padStart(6)}${withTotal ? 'total'.padStart(8) : ''}  function\n`);
for (const [key, row] of sorted) {
  process.stdout.write(`${pct(row.self)}${withTotal ? `  ${pct(row.total)}` : ''}  ${key}\n`);
}
