// Fused LoRA linear, variant 'sg' (subgroups of at least 8 lanes): each invocation owns 4 columns × all TM = 8·G
// rows of the tile (G = 1, 2, 4 or 8) in registers, so W is read once per tile. The rows are shared by each group of 8 lanes: lane t
// loads x row t of an 8-row block (and s·u row t from workgroup memory) and subgroupShuffle hands it to the other 7.
// Every lane stays active through the shuffles (rows and columns past the tensors are clamped, never stored).
// Grid: x = ceil(N / 256), row block = wg.y + wg.z·ny (ceil(M / TM)). Followed by lora_common + an io file.
enable subgroups;


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

/** acc.r_t += v_t·wt for the 8 rows of a block, v_t = lane t's `mine` of this group (grp = first lane of the group). */
fn shuf8(s: Acc8, mine: vec4<f32>, grp: u32, wt: mat4x4<f32>) -> Acc8 {
  var o = s;
  o.r0 = mac(o.r0, subgroupShuffle(mine, grp), wt);
  o.r1 = mac(o.r1, subgroupShuffle(mine, grp | 1u), wt);
  o.r2 = mac(o.r2, subgroupShuffle(mine, grp | 2u), wt);
  o.r3 = mac(o.r3, subgroupShuffle(mine, grp | 3u), wt);
  o.r4 = mac(o.r4, subgroupShuffle(mine, grp | 4u), wt);
  o.r5 = mac(o.r5, subgroupShuffle(mine, grp | 5u), wt);
  o.r6 = mac(o.r6, subgroupShuffle(mine, grp | 6u), wt);
  o.r7 = mac(o.r7, subgroupShuffle(mine, grp | 7u), wt);
  return o;
}

/** This lane's x row of block j at k .. k + 3 (row mt + 8·j + lane, clamped into x; zero past K). */
fn ldXb(mt: u32, j: u32, lane: u32, k: u32) -> vec4<f32> {
  return mk(ldX(min(mt + 8u * j + lane, p.M - 1u) * p.K + k), k);
}

/** This lane's s·u row of block j at ranks q .. q + 3 (tile row 8·j + lane). */
fn ldUb(j: u32, lane: u32, uq: u32) -> vec4<f32> {
  return ush[(8u * j + lane) * p.RQ + uq];
}

/**
 * Phase 0: ush[row·RQ + q / 4] = s·u[mt + row, q .. q + 3] for the TM tile rows (zero past R), one row per
 * invocation (rows past TM repeat row TM - 1 and store nothing; rows past M are computed from the clamped last
 * row), 8 ranks at a time: lane t of each 8-lane group loads A row q + t and subgroupShuffle hands it to the
 * others, so each lane's loads per k-step are one x and one A vec4. u itself goes to uo when asked (by the
 * workgroups of the first column tile only). The caller puts a barrier after it.
 */
fn projectRows(mt: u32, li: u32, lane: u32, grp: u32, firstTile: bool) {
  let row = min(li, p.TM - 1u);
  let m = min(mt + row, p.M - 1u);
  let xr = m * p.K;
  let mine = li < p.TM;
  let writeU = mine && (p.flags & 2u) != 0u && firstTile && mt + row < p.M;
  for (var q = 0u; q < p.R; q += 8u) {
    let ar = min(q + lane, p.R - 1u) * p.K;
    var lo = vec4<f32>(0.0);
    var hi = vec4<f32>(0.0);
    for (var k = 0u; k < p.K; k += 4u) {
      let xv = mk(ldXd(xr + k), k);
      let al = mk(ldA(ar + k), k);
      lo = lo + vec4<f32>(
        dot(xv, subgroupShuffle(al, grp)),
        dot(xv, subgroupShuffle(al, grp | 1u)),
        dot(xv, subgroupShuffle(al, grp | 2u)),
        dot(xv, subgroupShuffle(al, grp | 3u)),
      );
      hi = hi + vec4<f32>(
        dot(xv, subgroupShuffle(al, grp | 4u)),
        dot(xv, subgroupShuffle(al, grp | 5u)),
        dot(xv, subgroupShuffle(al, grp | 6u)),
        dot(xv, subgroupShuffle(al, grp | 7u)),
      );
    }
    if (mine) {
      putU(row, m, q, lo, writeU);
      putU(row, m, q + 4u, hi, writeU);
    }
  }
}

/** Copy an 8-row block into rows[8·j ..] (constant j: plain register moves). */
fn put8(rows: ptr<function, array<vec4<f32>, 64>>, j: u32, s: Acc8) {
  (*rows)[8u * j] = s.r0;
  (*rows)[8u * j + 1u] = s.r1;
  (*rows)[8u * j + 2u] = s.r2;
  (*rows)[8u * j + 3u] = s.r3;
  (*rows)[8u * j + 4u] = s.r4;
  (*rows)[8u * j + 5u] = s.r5;
  (*rows)[8u * j + 6u] = s.r6;
  (*rows)[8u * j + 7u] = s.r7;
}

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
  @builtin(subgroup_invocation_id) sgid: u32,
) {
  let mt = (wg.y + wg.z * nwg.y) * p.TM;
  if (mt >= p.M) { return; }
  let lane = sgid & 7u;
  let grp = sgid & ~7u;
  // 8-row blocks per invocation (1, 2, 4 or 8): a run-time value, so one pipeline serves every M (the branches
  // below are uniform)
  let G = p.TM / 8u;
  projectRows(mt, li, lane, grp, wg.x == 0u);
  workgroupBarrier();

  let n0 = wg.x * 256u + li * 4u;
  let nl = p.N - 1u;
  let w0 = min(n0, nl) * p.K;
  let w1 = min(n0 + 1u, nl) * p.K;
  let w2 = min(n0 + 2u, nl) * p.K;
  let w3 = min(n0 + 3u, nl) * p.K;
  var acc0: Acc8;
  var acc1: Acc8;
  var acc2: Acc8;
  var acc3: Acc8;
  var acc4: Acc8;
  var acc5: Acc8;
  var acc6: Acc8;
  var acc7: Acc8;
  for (var k = 0u; k < p.K; k += 4u) {
    let wt = ldWt(w0, w1, w2, w3, k);
    acc0 = shuf8(acc0, ldXb(mt, 0u, lane, k), grp, wt);
    if (G > 1u) {
      acc1 = shuf8(acc1, ldXb(mt, 1u, lane, k), grp, wt);
    }
    if (G > 2u) {
      acc2 = shuf8(acc2, ldXb(mt, 2u, lane, k), grp, wt);
      acc3 = shuf8(acc3, ldXb(mt, 3u, lane, k), grp, wt);
    }
    if (G > 4u) {
      acc4 = shuf8(acc4, ldXb(mt, 4u, lane, k), grp, wt);
      acc5 = shuf8(acc5, ldXb(mt, 5u, lane, k), grp, wt);
      acc6 = shuf8(acc6, ldXb(mt, 6u, lane, k), grp, wt);
      acc7 = shuf8(acc7, ldXb(mt, 7u, lane, k), grp, wt);
    }
  }
  // + (s·u)·Bᵀ over the ranks, 4 at a time (ush is zero past R, ldBt masks past R)
  for (var q = 0u; q < p.R; q += 4u) {
    let bt = ldBt(n0, q);
    let uq = q / 4u;
    acc0 = shuf8(acc0, ldUb(0u, lane, uq), grp, bt);
    if (G > 1u) {
      acc1 = shuf8(acc1, ldUb(1u, lane, uq), grp, bt);
    }
    if (G > 2u) {
      acc2 = shuf8(acc2, ldUb(2u, lane, uq), grp, bt);
      acc3 = shuf8(acc3, ldUb(3u, lane, uq), grp, bt);
    }
    if (G > 4u) {
      acc4 = shuf8(acc4, ldUb(4u, lane, uq), grp, bt);
      acc5 = shuf8(acc5, ldUb(5u, lane, uq), grp, bt);
      acc6 = shuf8(acc6, ldUb(6u, lane, uq), grp, bt);
      acc7 = shuf8(acc7, ldUb(7u, lane, uq), grp, bt);
    }
  }
  // stores once per invocation: one loop whose trip count depends on M (a single copy of the store code)
  var rows: array<vec4<f32>, 64>;
  put8(&rows, 0u, acc0);
  if (G > 1u) { put8(&rows, 1u, acc1); }
  if (G > 2u) {
    put8(&rows, 2u, acc2);
    put8(&rows, 3u, acc3);
  }
  if (G > 4u) {
    put8(&rows, 4u, acc4);
    put8(&rows, 5u, acc5);
    put8(&rows, 6u, acc6);
    put8(&rows, 7u, acc7);
  }
  let nrows = min(p.TM, p.M - mt);
  for (var i = 0u; i < nrows; i++) {
    store(mt + i, n0, rows[i]);
  }
}
