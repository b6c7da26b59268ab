// Runs `graft bench finetune` for a list of rows, R times each (graft and its peers in one process per run), and
// prints the markdown table of bench/README.md with per-row medians: node bench/finetune-table.mjs [--repeats R]
// [--rows resnet50:lora:4:32,bert-tiny:full:8:128,...] [--peer tfjs,torch] [--steps N] [--json-dir DIR].
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const DEFAULT_ROWS = [
  'resnet50:full:4:32', 'resnet50:lora:4:32', 'resnet50:linear-probe:4:32',
  'bert-tiny:full:8:128', 'bert-tiny:lora:8:128', 'bert-mini:full:8:128', 'bert-mini:lora:8:128',
];

function parseArgs(argv) {
  const a = { repeats: 3, rows: DEFAULT_ROWS, peer: 'tfjs,torch', steps: 3, jsonDir: null };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i];
    const v = argv[++i];
    if (v === undefined) throw new Error(`${f} needs a value`);
    if (f === '--repeats') a.repeats = Number(v);
    else if (f === '--rows') a.rows = v.split(',');
    else if (f === '--peer') a.peer = v;
    else if (f === '--steps') a.steps = Number(v);
    else if (f === '--json-dir') a.jsonDir = v;
    else throw new Error(`unknown flag ${f} (known: --repeats R --rows LIST --peer LIST --steps N --json-dir DIR)`);
  }
  if (!Number.isInteger(a.repeats) || a.repeats < 1) throw new Error('--repeats must be a positive integer');
  return a;
}

const median = (xs) => {
  const s = [...xs].sort((p, q) => p - q);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
};
const fx = (v, d = 2) => (v === undefined || v === null || Number.isNaN(v) ? '–' : v.toFixed(d));
const range = (xs, d = 2) => (xs.length > 1 ? ` (${fx(Math.min(...xs), d)}–${fx(Math.max(...xs), d)})` : '');

let args;
try {
  args = parseArgs(process.argv.slice(2));
} catch (e) {
  console.error(`finetune-table: ${e.message}`);
  process.exit(2);
}
if (args.jsonDir) mkdirSync(args.jsonDir, { recursive: true });

const lines = [
  '| model | strategy | batch | input | graft samples/s | step ms | encode ms | dispatches | peak MiB | tfjs samples/s | **graft ÷ tfjs** | torch samples/s | graft ÷ torch |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
];
let adapter = '?';
for (const row of args.rows) {
  const [model, strategy, batch, size] = row.split(':');
  const isBert = model.startsWith('bert');
  const runs = [];
  for (let r = 0; r < args.repeats; r++) {
    const cli = ['dist/cli.js', 'bench', 'finetune', '--model', model, '--strategy', strategy, '--batch', batch,
      isBert ? '--seq' : '--res', size, '--steps', String(args.steps), '--warmup', '1', '--peer', args.peer, '--json'];
    console.error(`[${row} run ${r + 1}/${args.repeats}] node ${cli.join(' ')}`);
    const p = spawnSync('node', cli, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
    if (p.status !== 0) {
      console.error(p.stderr.split('\n').filter((l) => !l.startsWith('Warning')).join('\n'));
      process.exit(1);
    }
    const j = JSON.parse(p.stdout);
    if (args.jsonDir) writeFileSync(join(args.jsonDir, `${row.replaceAll(':', '_')}_${r + 1}.json`), p.stdout);
    runs.push(j);
    adapter = j.adapter;
  }
  const peer = (j, name) => j.peers?.find((p) => p.peer === name && p.samplesPerSec);
  const col = (f) => runs.map(f).filter((v) => v !== undefined && v !== null);
  const sps = col((j) => j.samplesPerSec);
  const tfjs = col((j) => peer(j, 'tfjs')?.samplesPerSec);
  const torch = col((j) => peer(j, 'torch')?.samplesPerSec);
  const rt = col((j) => peer(j, 'tfjs')?.ratio);
  const rT = col((j) => peer(j, 'torch')?.ratio);
  lines.push(
    `| ${model} | ${strategy} | ${batch} | ${isBert ? `seq ${size}` : `${size}×${size}`} | ${fx(median(sps))}${range(sps)} | ` +
      `${fx(median(col((j) => j.medianStepMs)), 0)} | ${fx(median(col((j) => j.encodeMs)), 0)} | ${runs[0].dispatchesPerStep} | ` +
      `${fx(runs[0].memory.peakBytes / 2 ** 20, 0)} | ${tfjs.length ? fx(median(tfjs)) : '–'} | ` +
      `**${rt.length ? `${fx(median(rt))}×` : '–'}**${range(rt)} | ${torch.length ? fx(median(torch)) : '–'} | ${rT.length ? `${fx(median(rT))}×` : '–'} |`,
  );
  console.error(lines[lines.length - 1]);
}
console.log(lines.join('\n'));
console.log(`\n${args.repeats} run(s) per row, each one process (graft, then its peers); medians, (min–max) of the runs. Adapter: ${adapter}.`);
