// Matmul, subgroup register blocking: each invocation owns 4 columns × 8·G rows of C [M, N] (per batch); no workgroup memory.
// Lanes split the columns; the rows are shared by each group of 8 lanes: lane t of a group loads the A values of
// row t (or of a 4×4 block when TRANS_A) and subgroupShuffle hands them to the other 7 lanes, so every A element is
// loaded once per group instead of once per lane. Needs subgroups of at least 8 lanes (checked by the wrapper).
// Grid: x = ceil(ceil(N/4) / WG), y = ceil(M / (8·G)), z = batch. Followed by matmul_common + an io file.
enable subgroups;

// 8-row groups per invocation (1, 2, 4 or 8): TM = 8·G rows.
override G: u32 = 8u;
override WG: u32 = 16u;

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

/** op(A)[row j·8 + t, k + kk] broadcast to all lanes of group `grp` (al is what each lane loaded for block j). */
fn shA(al: vec4<f32>, kk: u32, t: u32, grp: u32) -> vec4<f32> {
  if (TRANS_A) {
    // lane l holds A[k + (l & 3), rows 4·(l >> 2) .. + 3]
    return vec4<f32>(subgroupShuffle(al[t & 3u], grp | (kk + 4u * (t >> 2u))));
  }
  // lane l holds A[row l, k .. k + 3]
  return vec4<f32>(subgroupShuffle(al[kk], grp | t));
}

/** acc += Σ_kk op(A)[t, k + kk] · bk[kk] for row t of a block: one row's accumulator stays in registers for 4 updates. */
fn row4(acc: vec4<f32>, al: vec4<f32>, t: u32, bk: mat4x4<f32>, grp: u32) -> vec4<f32> {
  var o = fma(shA(al, 0u, t, grp), bk[0], acc);
  o = fma(shA(al, 1u, t, grp), bk[1], o);
  o = fma(shA(al, 2u, t, grp), bk[2], o);
  return fma(shA(al, 3u, t, grp), bk[3], o);
}

/** One k-step of 4 for an 8-row block: bk[kk] = op(B)[k + kk, this lane's 4 columns]. */
fn step8(s: Acc8, al: vec4<f32>, bk: mat4x4<f32>, grp: u32) -> Acc8 {
  return Acc8(
    row4(s.r0, al, 0u, bk, grp),
    row4(s.r1, al, 1u, bk, grp),
    row4(s.r2, al, 2u, bk, grp),
    row4(s.r3, al, 3u, bk, grp),
    row4(s.r4, al, 4u, bk, grp),
    row4(s.r5, al, 5u, bk, grp),
    row4(s.r6, al, 6u, bk, grp),
    row4(s.r7, al, 7u, bk, grp),
  );
}

/** What this lane loads of op(A) for rows r .. r + 7 at k .. k + 3 (zero past K; rows clamped into A). */
fn loadA8(r: u32, k: u32, lane: u32) -> vec4<f32> {
  if (TRANS_A) {
    let kr = k + (lane & 3u);
    let m = min(r + 4u * (lane >> 2u), (p.M - 1u) & ~3u);
    return maskK1(ldA(aIdx(m, kr)), kr);
  }
  let m = min(r + lane, p.M - 1u);
  return maskK4(ldA(aIdx(m, k)), k);
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

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(subgroup_invocation_id) sgid: u32,
) {
  setBatch(wg.z);
  let r0 = wg.y * 8u * G;
  let col = wg.x * WG + lid.x;
  // every lane stays active (shuffles need the whole group): out-of-range columns load the last group
  let n = 4u * min(col, (p.N - 1u) / 4u);
  let lane = sgid & 7u;
  let grp = sgid & ~7u;
  var acc0: Acc8;
  var acc1: Acc8;
  var acc2: Acc8;
  var acc3: Acc8;
  var acc4: Acc8;
  var acc5: Acc8;
  var acc6: Acc8;
  var acc7: Acc8;
  for (var k = 0u; k < p.K; k += 4u) {
    // all loads first (their per-lane code is branchy on CPU adapters), then straight-line arithmetic
    let bk = loadB4(k, n);
    let al0 = loadA8(r0, k, lane);
    var al1: vec4<f32>;
    var al2: vec4<f32>;
    var al3: vec4<f32>;
    var al4: vec4<f32>;
    var al5: vec4<f32>;
    var al6: vec4<f32>;
    var al7: vec4<f32>;
    if (G > 1u) { al1 = loadA8(r0 + 8u, k, lane); }
    if (G > 2u) {
      al2 = loadA8(r0 + 16u, k, lane);
      al3 = loadA8(r0 + 24u, k, lane);
    }
    if (G > 4u) {
      al4 = loadA8(r0 + 32u, k, lane);
      al5 = loadA8(r0 + 40u, k, lane);
      al6 = loadA8(r0 + 48u, k, lane);
      al7 = loadA8(r0 + 56u, k, lane);
    }
    acc0 = step8(acc0, al0, bk, grp);
    if (G > 1u) { acc1 = step8(acc1, al1, bk, grp); }
    if (G > 2u) {
      acc2 = step8(acc2, al2, bk, grp);
      acc3 = step8(acc3, al3, bk, grp);
    }
    if (G > 4u) {
      acc4 = step8(acc4, al4, bk, grp);
      acc5 = step8(acc5, al5, bk, grp);
      acc6 = step8(acc6, al6, bk, grp);
      acc7 = step8(acc7, al7, bk, grp);
    }
  }
  // stores run once per invocation: one loop over the rows
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
  let nc = 4u * col;
  // the trip count depends on M, so the compiler keeps one copy of the (large) store + epilogue code
  let nrows = min(8u * G, p.M - r0);
  for (var i = 0u; i < nrows; i++) {
    stC(r0 + i, nc, rows[i]);
  }
}
