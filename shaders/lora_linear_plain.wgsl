// Fused LoRA linear, variant 'plain' (no subgroups needed): each invocation walks the tile's rows in blocks of 8
// (a loop with a run-time trip count, so the multiply-add code exists once), 8 rows × 4 columns in registers per
// block (the x rows are the same for the whole workgroup; W is re-read per block). Phase 0: one tile row per
// invocation, 16 ranks at a time.
// Every invocation stays active (columns past N are clamped, never stored).
// Grid: x = ceil(N / 256), row block = wg.y + wg.z·ny (ceil(M / TM)). Followed by lora_common + an io file.

struct Acc8 {
  r0: vec4<f32>,
  r1: vec4<f32>,
  r2: vec4<f32>,
  r3: vec4<f32>,
  r4: vec4<f32>,
  r5: vec4<f32>,
  r6: vec4<f32>,
  r7: vec4<f32>,
}

/** x[row, k .. k + 3] (row clamped into x, zero past K). */
fn ldXr(row: u32, k: u32) -> vec4<f32> {
  return mk(ldX(min(row, p.M - 1u) * p.K + k), k);
}

/** acc.r_i += x[r + i, k .. k + 3]·wt for 8 rows (wt: 4 k-rows × this invocation's 4 columns of Wᵀ). */
fn step8(s: Acc8, r: u32, k: u32, wt: mat4x4<f32>) -> Acc8 {
  var o = s;
  o.r0 = mac(o.r0, ldXr(r, k), wt);
  o.r1 = mac(o.r1, ldXr(r + 1u, k), wt);
  o.r2 = mac(o.r2, ldXr(r + 2u, k), wt);
  o.r3 = mac(o.r3, ldXr(r + 3u, k), wt);
  o.r4 = mac(o.r4, ldXr(r + 4u, k), wt);
  o.r5 = mac(o.r5, ldXr(r + 5u, k), wt);
  o.r6 = mac(o.r6, ldXr(r + 6u, k), wt);
  o.r7 = mac(o.r7, ldXr(r + 7u, k), wt);
  return o;
}

/** acc.r_i += (s·u)[t + i, q .. q + 3]·bt for tile rows t .. t + 7 (bt: 4 ranks × 4 columns of Bᵀ; uq = q / 4). */
fn lora8(s: Acc8, t: u32, uq: u32, bt: mat4x4<f32>) -> Acc8 {
  var o = s;
  let e = t * p.RQ + uq;
  let rq = p.RQ;
  o.r0 = mac(o.r0, ush[e], bt);
  o.r1 = mac(o.r1, ush[e + rq], bt);
  o.r2 = mac(o.r2, ush[e + 2u * rq], bt);
  o.r3 = mac(o.r3, ush[e + 3u * rq], bt);
  o.r4 = mac(o.r4, ush[e + 4u * rq], bt);
  o.r5 = mac(o.r5, ush[e + 5u * rq], bt);
  o.r6 = mac(o.r6, ush[e + 6u * rq], bt);
  o.r7 = mac(o.r7, ush[e + 7u * rq], bt);
  return o;
}

/** Aᵀ[k .. k + 3, ranks q .. q + 3] (ranks clamped into A, zero past K). */
fn ldAt(q: u32, k: u32) -> mat4x4<f32> {
  let rl = p.R - 1u;
  return transpose(mat4x4<f32>(
    mk(ldA(min(q, rl) * p.K + k), k),
    mk(ldA(min(q + 1u, rl) * p.K + k), k),
    mk(ldA(min(q + 2u, rl) * p.K + k), k),
    mk(ldA(min(q + 3u, rl) * p.K + k), k),
  ));
}

/**
 * Phase 0: ush[row·RQ + q / 4] = s·u[mt + row, q .. q + 3] for the TM tile rows (zero past R), one row per
 * invocation, 16 ranks at a time (rows past M are computed from the clamped last row);
 * u itself goes to uo when asked (by the workgroups of the first column tile only). The caller puts a barrier
 * after it. Invocations past TM repeat row TM - 1 and store nothing.
 */
fn projectRows(mt: u32, li: u32, firstTile: bool) {
  let row = min(li, p.TM - 1u);
  let m = min(mt + row, p.M - 1u);
  let xr = m * p.K;
  let mine = li < p.TM;
  let writeU = mine && (p.flags & 2u) != 0u && firstTile && mt + row < p.M;
  for (var q = 0u; q < p.R; q += 16u) {
    var u0 = vec4<f32>(0.0);
    var u1 = vec4<f32>(0.0);
    var u2 = vec4<f32>(0.0);
    var u3 = vec4<f32>(0.0);
    for (var k = 0u; k < p.K; k += 4u) {
      let xv = mk(ldXd(xr + k), k);
      u0 = mac(u0, xv, ldAt(q, k));
      u1 = mac(u1, xv, ldAt(q + 4u, k));
      u2 = mac(u2, xv, ldAt(q + 8u, k));
      u3 = mac(u3, xv, ldAt(q + 12u, k));
    }
    if (mine) {
      putU(row, m, q, u0, writeU);
      putU(row, m, q + 4u, u1, writeU);
      putU(row, m, q + 8u, u2, writeU);
      putU(row, m, q + 12u, u3, writeU);
    }
  }
}

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let mt = (wg.y + wg.z * nwg.y) * p.TM;
  if (mt >= p.M) { return; }
  projectRows(mt, li, wg.x == 0u);
  workgroupBarrier();

  // no early return for columns past N (clamped, never stored): every invocation runs the same loads
  let n0 = wg.x * 256u + li * 4u;
  let nl = p.N - 1u;
  let w0 = min(n0, nl) * p.K;
  let w1 = min(n0 + 1u, nl) * p.K;
  let w2 = min(n0 + 2u, nl) * p.K;
  let w3 = min(n0 + 3u, nl) * p.K;
  let nrows = min(p.TM, p.M - mt);
  for (var rb = 0u; rb < nrows; rb += 8u) {
    var acc = Acc8(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    for (var k = 0u; k < p.K; k += 4u) {
      acc = step8(acc, mt + rb, k, ldWt(w0, w1, w2, w3, k));
    }
    // + (s·u)·Bᵀ over the ranks, 4 at a time (ush is zero past R, ldBt masks past R)
    for (var q = 0u; q < p.R; q += 4u) {
      acc = lora8(acc, rb, q / 4u, ldBt(n0, q));
    }
    var rows = array<vec4<f32>, 8>(acc.r0, acc.r1, acc.r2, acc.r3, acc.r4, acc.r5, acc.r6, acc.r7);
    let cnt = min(8u, nrows - rb);
    for (var i = 0u; i < cnt; i++) {
      store(mt + rb + i, n0, rows[i]);
    }
  }
}
