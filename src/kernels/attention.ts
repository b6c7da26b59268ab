// Scaled dot-product attention for training: one fused forward kernel (online softmax, saves lse) and a
// flash-style backward that recomputes probabilities from lse (shaders/attention_*.wgsl). The kernels read
// the head dim as vec4; other head dims are zero-padded to a multiple of 4 (and gradients cropped back).
import fwdSrc from '../../shaders/attention_fwd.wgsl';
import prepSrc from '../../shaders/attention_bwd_prep.wgsl';
import dqSrc from '../../shaders/attention_bwd_dq.wgsl';
import dkdvSrc from '../../shaders/attention_bwd_dkdv.wgsl';
import repackSrc from '../../shaders/attention_repack.wgsl';
import { ShapeError } from '../runtime/errors.js';
import { f32, type ParamValue } from '../runtime/params.js';
import type { Runtime } from '../runtime/runtime.js';
import { Tensor } from '../tensor.js';
import { grid1d } from './grid.js';

/**
 * Largest head dim accepted (model configs validate against it). The kernels keep no head-sized state in
 * registers (the output rows are the accumulators), so this is a conservative bound that covers common
 * models, not a register limit; raising it needs no kernel change.
 */
export const ATTENTION_MAX_HEAD_DIM = 128;

const K_FWD = { name: 'attention_fwd', code: fwdSrc };
const K_PREP = { name: 'attention_bwd_prep', code: prepSrc };
const K_DQ = { name: 'attention_bwd_dq', code: dqSrc };
const K_DKDV = { name: 'attention_bwd_dkdv', code: dkdvSrc };
const K_REPACK = { name: 'attention_repack', code: repackSrc };

export interface AttentionOptions {
  /** [B, Tk] f32: 1 = attend, 0 = padding (BERT attention_mask). */
  mask?: Tensor | null;
  /** Score scale (default 1 / sqrt(Dh)). */
  scale?: number;
  /** Query i sees keys j <= i (top-left aligned, as torch scaled_dot_product_attention is_causal). */
  causal?: boolean;
}

interface Geometry {
  B: number;
  H: number;
  Tq: number;
  Tk: number;
  Dh: number;
  /** Head dim rounded up to a multiple of 4 (the kernels' vec4 width × 4). */
  Dp: number;
  params: ParamValue[];
}

const fmt = (t: Tensor) => `[${t.shape.join(', ')}]`;
const sameShape = (a: Tensor, b: Tensor) => a.rank === b.rank && a.shape.every((d, i) => d === b.shape[i]);

function geometry(op: string, q: Tensor, k: Tensor, v: Tensor, o: AttentionOptions): Geometry {
  for (const [n, t] of [['q', q], ['k', k], ['v', v]] as const) {
    if (t.dtype !== 'f32' || t.rank !== 4) throw new ShapeError(`${op}: ${n} must be f32 [B, H, T, Dh], got ${t.dtype} ${fmt(t)} (q ${fmt(q)}, k ${fmt(k)})`);
  }
  const [B, H, Tq, Dh] = q.shape as [number, number, number, number];
  const Tk = k.shape[2]!;
  if (k.shape[0] !== B || k.shape[1] !== H || k.shape[3] !== Dh) throw new ShapeError(`${op}: k ${fmt(k)} does not fit q ${fmt(q)}`);
  if (!sameShape(k, v)) throw new ShapeError(`${op}: v ${fmt(v)} must match k ${fmt(k)}`);
  if (Dh < 1 || Dh > ATTENTION_MAX_HEAD_DIM) throw new ShapeError(`${op}: head dim ${Dh} of q ${fmt(q)} must be in [1, ${ATTENTION_MAX_HEAD_DIM}]`);
  const m = o.mask ?? null;
  if (m && (m.dtype !== 'f32' || m.rank !== 2 || m.shape[0] !== B || m.shape[1] !== Tk)) {
    throw new ShapeError(`${op}: mask must be f32 [${B}, ${Tk}] for q ${fmt(q)} and k ${fmt(k)}, got ${m.dtype} ${fmt(m)}`);
  }
  const scale = o.scale ?? 1 / Math.sqrt(Dh);
  const Dp = 4 * Math.ceil(Dh / 4);
  return { B, H, Tq, Tk, Dh, Dp, params: [B * H, H, Tq, Tk, Dp / 4, f32(scale), o.causal ? 1 : 0, m ? 1 : 0] };
}

/** Copy t [..., a] into a new tensor [..., b] (zero-filled or cropped columns). */
function repack(t: Tensor, b: number): Tensor {
  const rt = t.rt;
  const a = t.shape[t.rank - 1]!;
  const rows = a === 0 ? 0 : t.size / a;
  const out = Tensor.empty(rt, [...t.shape.slice(0, -1), b], 'f32');
  rt.dispatch(K_REPACK, {
    buffers: [t, out],
    params: [rows, a, b],
    constants: { WG: 256 },
    workgroups: grid1d(rows * b, 256, rt.limits.maxComputeWorkgroupsPerDimension),
  });
  return out;
}

/**
 * 64 invocations per workgroup for every shape (one pipeline per kernel: a CPU driver takes seconds to
 * compile each) and the grid: x = row blocks (each invocation owns rowsPerInvocation rows), y/z = B·H.
 */
function launch(rt: Runtime, rows: number, bh: number, rowsPerInvocation: number): { wg: number; workgroups: [number, number, number] } {
  const wg = 64;
  const maxWg = rt.limits.maxComputeWorkgroupsPerDimension;
  const x = Math.ceil(rows / (wg * rowsPerInvocation));
  if (x > maxWg) throw new ShapeError(`attention: ${rows} rows need ${x} workgroups, over the limit ${maxWg}`);
  const y = Math.min(bh, maxWg);
  return { wg, workgroups: [x, y, Math.ceil(bh / y)] };
}

/**
 * Scaled dot-product attention. q [B, H, Tq, Dh], k/v [B, H, Tk, Dh] -> out [B, H, Tq, Dh] and
 * lse [B, H, Tq], the logsumexp of the masked, scaled scores (kept for attentionBackward).
 * A query row that sees no key (all padding, or causal with its prefix padded) outputs 0, lse -inf.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): { out: Tensor; lse: Tensor } {
  const g = geometry('attention', q, k, v, opts);
  const rt = q.rt;
  if (g.Tk === 0 && q.size > 0) throw new ShapeError(`attention: k ${fmt(k)} has no keys for q ${fmt(q)}`);
  const lse = Tensor.empty(rt, [g.B, g.H, g.Tq], 'f32');
  if (q.size === 0) return { out: Tensor.empty(rt, q.shape, 'f32'), lse };
  const pad = g.Dp !== g.Dh;
  const [qp, kp, vp] = pad ? [repack(q, g.Dp), repack(k, g.Dp), repack(v, g.Dp)] : [q, k, v];
  const outp = Tensor.empty(rt, qp.shape, 'f32');
  const l = launch(rt, g.Tq, g.B * g.H, 2);
  rt.dispatch(K_FWD, {
    buffers: [qp, kp, vp, opts.mask ?? q, outp, lse],
    params: g.params,
    constants: { WG: l.wg },
    workgroups: l.workgroups,
  });
  if (!pad) return { out: outp, lse };
  const out = repack(outp, g.Dh);
  for (const t of [qp, kp, vp, outp]) t.dispose();
  return { out, lse };
}

/**
 * Gradients of attention for upstream dOut [B, H, Tq, Dh], given the forward's out and lse and the same
 * options. Three kernels: (lse, rowsum(dOut·out)) per query row, dq per query row, dk/dv per key row; probabilities are
 * recomputed from lse, nothing T×T is stored. Deterministic (no atomics).
 */
export function attentionBackward(
  dOut: Tensor,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  lse: Tensor,
  opts: AttentionOptions = {},
): { dq: Tensor; dk: Tensor; dv: Tensor } {
  const op = 'attentionBackward';
  const g = geometry(op, q, k, v, opts);
  for (const [n, t] of [['dOut', dOut], ['out', out]] as const) {
    if (t.dtype !== 'f32' || !sameShape(t, q)) throw new ShapeError(`${op}: ${n} ${fmt(t)} (${t.dtype}) must match q ${fmt(q)}`);
  }
  if (lse.dtype !== 'f32' || lse.size !== g.B * g.H * g.Tq) throw new ShapeError(`${op}: lse ${fmt(lse)} must be f32 [${g.B}, ${g.H}, ${g.Tq}] for q ${fmt(q)}`);
  const rt = q.rt;
  if (q.size === 0 || k.size === 0) {
    const z = [Tensor.zeros(rt, q.shape, 'f32'), Tensor.zeros(rt, k.shape, 'f32'), Tensor.zeros(rt, v.shape, 'f32')] as const;
    return { dq: z[0], dk: z[1], dv: z[2] };
  }
  const pad = g.Dp !== g.Dh;
  const ins = pad ? [dOut, q, k, v, out].map((t) => repack(t, g.Dp)) : [dOut, q, k, v, out];
  const [dOutp, qp, kp, vp, outp] = ins as [Tensor, Tensor, Tensor, Tensor, Tensor];
  const dq = Tensor.empty(rt, qp.shape, 'f32');
  const dk = Tensor.empty(rt, kp.shape, 'f32');
  const dv = Tensor.empty(rt, vp.shape, 'f32');
  const mask = opts.mask ?? q;
  const rows = g.B * g.H * g.Tq;
  const stats = Tensor.empty(rt, [rows, 2], 'f32');
  rt.dispatch(K_PREP, {
    buffers: [outp, dOutp, lse, stats],
    params: [rows, g.Dp / 4],
    constants: { WG: 64 },
    workgroups: grid1d(rows, 64, rt.limits.maxComputeWorkgroupsPerDimension),
  });
  const lq = launch(rt, g.Tq, g.B * g.H, 2);
  rt.dispatch(K_DQ, {
    buffers: [qp, kp, vp, mask, dOutp, stats, dq],
    params: g.params,
    constants: { WG: lq.wg },
    workgroups: lq.workgroups,
  });
  const lk = launch(rt, g.Tk, g.B * g.H, 2);
  rt.dispatch(K_DKDV, {
    buffers: [qp, kp, vp, mask, dOutp, stats, dk, dv],
    params: g.params,
    constants: { WG: lk.wg },
    workgroups: lk.workgroups,
  });
  stats.dispose();
  if (!pad) return { dq, dk, dv };
  const res = { dq: repack(dq, g.Dh), dk: repack(dk, g.Dh), dv: repack(dv, g.Dh) };
  for (const t of [...ins, dq, dk, dv]) t.dispose();
  return res;
}
