// Fused LoRA linear forward, shared part: y [M, N] = x [M, K]·W [N, K]ᵀ + bias [N] + s·(xd [M, K]·A [R, K]ᵀ)·B [N, R]ᵀ
// (xd = the dropped-out x, or x itself). A workgroup of 64 invocations owns a tile of TM rows × 256 columns, each
// invocation 4 columns. Phase 0 (the variant's projectRows) computes the tile rows' s·u = s·xd·Aᵀ [TM, R] into
// workgroup memory once for the whole tile (and u into uo [M, R] when asked, for backward); after a barrier,
// phase 1 adds x·Wᵀ over K and then (s·u)·Bᵀ over the ranks into the same accumulators, + bias.
// Measured on llvmpipe: loads in loops cost about the same per lane whether or not the address is the same for
// the whole workgroup, so both phases keep loads per multiply-add low (shuffles in 'sg'); no invocation returns
// early where loads follow.
// Appended to a variant body (lora_linear_sg / lora_linear_plain), followed by lora_io_vec4 or lora_io_scalar.

struct Params {
  M: u32,
  N: u32,
  K: u32,
  R: u32,
  // bit 0: add bias; bit 1: write u to uo
  flags: u32,
  s: f32,
  // rows per workgroup (TM <= 64) and vec4s per row of ush (TM·RQ <= 1024, 4·RQ >= R)
  TM: u32,
  RQ: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(5) var<storage, read> bm: array<f32>;
@group(0) @binding(6) var<storage, read> biasv: array<f32>;
@group(0) @binding(7) var<storage, read_write> y: array<f32>;
@group(0) @binding(8) var<storage, read_write> uo: array<f32>;

// s·u of the tile rows: row i at ush[i·RQ ..] (16 KiB, WebGPU's guaranteed minimum; a fixed size, so one
// pipeline serves every tile height TM and rank).
var<workgroup> ush: array<vec4<f32>, 1024>;

/** Zero the lanes of v whose k index (k + lane) is at or past K (reads past a row may be anything); MASK_K comes from the io part. */
fn mk(v: vec4<f32>, k: u32) -> vec4<f32> {
  if (!MASK_K) { return v; }
  return select(vec4<f32>(0.0), v, vec4<u32>(k) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(p.K));
}

/** a + Σ_kk v[kk]·wt[kk]: one row of 4 columns; wt[kk] = the 4 columns' W (or B) values at inner index kk. */
fn mac(a: vec4<f32>, v: vec4<f32>, wt: mat4x4<f32>) -> vec4<f32> {
  var o = fma(vec4<f32>(v.x), wt[0], a);
  o = fma(vec4<f32>(v.y), wt[1], o);
  o = fma(vec4<f32>(v.z), wt[2], o);
  return fma(vec4<f32>(v.w), wt[3], o);
}

/** Wᵀ[k .. k + 3, the 4 columns whose W rows start at w0..w3] (zero past K). */
fn ldWt(w0: u32, w1: u32, w2: u32, w3: u32, k: u32) -> mat4x4<f32> {
  return transpose(mat4x4<f32>(mk(ldW(w0 + k), k), mk(ldW(w1 + k), k), mk(ldW(w2 + k), k), mk(ldW(w3 + k), k)));
}

/** B[n, q .. q + 3], zero past R (n already clamped into B). */
fn ldB4(n: u32, q: u32) -> vec4<f32> {
  let e = n * p.R + q;
  let v = vec4<f32>(bm[e], bm[e + 1u], bm[e + 2u], bm[e + 3u]);
  return select(vec4<f32>(0.0), v, vec4<u32>(q) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(p.R));
}

/** Bᵀ[q .. q + 3, columns n0 .. n0 + 3] (columns clamped into B, zero past R). */
fn ldBt(n0: u32, q: u32) -> mat4x4<f32> {
  let nl = p.N - 1u;
  return transpose(mat4x4<f32>(ldB4(min(n0, nl), q), ldB4(min(n0 + 1u, nl), q), ldB4(min(n0 + 2u, nl), q), ldB4(min(n0 + 3u, nl), q)));
}

/** y[m, n .. n + 3] = v (+ bias), skipping rows and columns outside y. */
fn store(m: u32, n: u32, v: vec4<f32>) {
  if (m >= p.M || n >= p.N) { return; }
  let cnt = min(4u, p.N - n);
  for (var i = 0u; i < cnt; i++) {
    var o = v[i];
    if ((p.flags & 1u) != 0u) { o = o + biasv[n + i]; }
    y[m * p.N + n + i] = o;
  }
}

/** Store s·u for ranks q .. q + 3 of tile row `row` (zero past R), and u itself to uo when asked. */
fn putU(row: u32, m: u32, q: u32, v: vec4<f32>, writeU: bool) {
  let acc = select(vec4<f32>(0.0), v, vec4<u32>(q) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(p.R));
  ush[row * p.RQ + q / 4u] = p.s * acc;
  if (writeU && q < p.R) {
    let cnt = min(4u, p.R - q);
    for (var i = 0u; i < cnt; i++) {
      uo[m * p.R + q + i] = acc[i];
    }
  }
}
