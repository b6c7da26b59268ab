// The PyTorch CPU peer of the fine-tune benchmark: runs bench/peers/torch_finetune.py under /usr/bin/python3 (or $GRAFT_PYTHON) and reads its one JSON line.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import type { FinetuneBenchSpec, PeerResult } from '../finetune-spec.js';
import { skippedResult, type StepProgress } from './step.js';

/** The python that has Debian's python3-torch. */
export function torchPython(): string {
  return process.env.GRAFT_PYTHON || '/usr/bin/python3';
}

/** bench/peers/torch_finetune.py, found from src/bench/peers (sources) or dist/ (bundled CLI). */
export function torchScript(): string | null {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const f = join(dir, 'bench', 'peers', 'torch_finetune.py');
    if (existsSync(f)) return f;
    dir = dirname(dir);
  }
  return null;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  error: Error | null;
}

function runPython(args: string[], onLine?: (line: string) => void): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(torchPython(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let pending = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => {
      const s = b.toString();
      stderr += s;
      pending += s;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const l of lines) onLine?.(l);
    });
    child.on('error', (error) => resolve({ code: null, stdout, stderr, error }));
    child.on('close', (code) => resolve({ code, stdout, stderr, error: null }));
  });
}

const lastLine = (s: string): string =>
  s
    .trim()
    .split('\n')
    .filter((l) => l.trim())
    .pop() ?? '';

const numberOr = (v: unknown): number => (typeof v === 'number' ? v : NaN);

type Availability = { ok: true } | { ok: false; why: string };
const availability = new Map<string, Promise<Availability>>();

/** Whether the python can import torch (and torchvision), with the reason when not (asked once per python per process). */
export function torchAvailable(): Promise<Availability> {
  const py = torchPython();
  let a = availability.get(py);
  if (!a) {
    a = checkTorch();
    availability.set(py, a);
  }
  return a;
}

async function checkTorch(): Promise<Availability> {
  const r = await runPython(['-c', 'import torch, torchvision']);
  if (r.error) return { ok: false, why: `python3-torch not installed (${torchPython()}: ${r.error.message})` };
  if (r.code !== 0) return { ok: false, why: `python3-torch not installed (${lastLine(r.stderr)})` };
  return { ok: true };
}

/** What torch_finetune.py reports: the peer result plus the model's parameter counts and every step's loss. */
export interface TorchRun extends PeerResult {
  trainableParams: number;
  totalParams: number;
  losses: number[];
}

/** Run the spec in PyTorch on the CPU; skipped (with a reason, counts NaN) when torch is missing or the script fails. */
export async function runTorchScript(spec: FinetuneBenchSpec, onProgress?: StepProgress): Promise<TorchRun> {
  const desc = 'pytorch cpu';
  const skip = (why: string, d = desc): TorchRun => ({ ...skippedResult('torch', d, why), trainableParams: NaN, totalParams: NaN, losses: [] });
  const script = torchScript();
  if (!script) return skip('bench/peers/torch_finetune.py not found');
  const avail = await torchAvailable();
  if (!avail.ok) return skip(avail.why);
  const r = await runPython([script, JSON.stringify(spec)], (line) => {
    const m = /^progress (\d+) (\d+)$/.exec(line.trim());
    if (m) onProgress?.(Number(m[1]), Number(m[2]));
  });
  if (r.error || r.code !== 0) {
    const why = r.error?.message ?? (lastLine(r.stderr.split('\n').filter((l) => !l.startsWith('progress ')).join('\n')) || `exit code ${r.code}`);
    return skip(`torch_finetune.py failed: ${why}`);
  }
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(lastLine(r.stdout)) as Record<string, unknown>;
  } catch {
    return skip(`torch_finetune.py printed no JSON result: ${lastLine(r.stdout)}`);
  }
  return {
    peer: 'torch',
    description: typeof j.description === 'string' ? j.description : desc,
    samplesPerSec: numberOr(j.samplesPerSec),
    medianStepMs: numberOr(j.medianStepMs),
    steps: numberOr(j.steps),
    trainableParams: numberOr(j.trainableParams),
    totalParams: numberOr(j.totalParams),
    losses: Array.isArray(j.losses) ? j.losses.map(numberOr) : [],
  };
}

/** The PyTorch CPU peer's result for `spec` (skipped with a reason when torch is missing or the script fails). */
export async function runTorchFinetune(spec: FinetuneBenchSpec, onProgress?: StepProgress): Promise<PeerResult> {
  const r = await runTorchScript(spec, onProgress);
  const out: PeerResult = { peer: r.peer, description: r.description, samplesPerSec: r.samplesPerSec, medianStepMs: r.medianStepMs, steps: r.steps };
  if (r.skipped !== undefined) out.skipped = r.skipped;
  return out;
}
