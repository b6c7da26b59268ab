// Matmul shared part (appended to every matmul variant): Params, batch offsets, index helpers, fused epilogue act(acc + bias) + residual.
// C [batch, M, N] = act(op(A) · op(B) + bias[N]) + residual[batch, M, N]; op(A) is [M, K], op(B) is [K, N].
// A is stored [M, K] (or [K, M] when TRANS_A), B is stored [K, N] (or [N, K] when TRANS_B).

struct Params {
  M: u32,
  N: u32,
  K: u32,
  // Batches: z = zBase + workgroup_id.z splits as z1 = z / D2, z2 = z % D2; element offsets use
  // per-level strides (0 where that operand is broadcast). C is dense: z * M * N.
  D2: u32,
  aS1: u32,
  aS2: u32,
  bS1: u32,
  bS2: u32,
  zBase: u32,
  aBase: u32,
  bBase: u32,
  cBase: u32,
  // epilogue: bit 0 = add bias, bit 1 = add residual; act: 0 none, 1 relu, 2 gelu (erf), 3 gelu (tanh approximation).
  // Runtime values, not overrides: the epilogue runs once per output, and every override combination
  // would be another pipeline to compile (seconds each on CPU adapters).
  flags: u32,
  act: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// bias [N] and residual [batch, M, N]; bound to a dummy read-only buffer when absent.
@group(0) @binding(4) var<storage, read> biasv: array<f32>;
@group(0) @binding(5) var<storage, read> resv: array<f32>;

override TRANS_A: bool = false;
override TRANS_B: bool = false;

var<private> aOff: u32;
var<private> bOff: u32;
var<private> cOff: u32;

fn setBatch(zLocal: u32) {
  let z = p.zBase + zLocal;
  let z1 = z / p.D2;
  let z2 = z % p.D2;
  aOff = p.aBase + z1 * p.aS1 + z2 * p.aS2;
  bOff = p.bBase + z1 * p.bS1 + z2 * p.bS2;
  cOff = p.cBase + z * p.M * p.N;
}

/** Element index of op(A)[m, k]. */
fn aIdx(m: u32, k: u32) -> u32 {
  if (TRANS_A) { return aOff + k * p.M + m; }
  return aOff + m * p.K + k;
}

/** Element index of op(B)[k, n]. */
fn bIdx(k: u32, n: u32) -> u32 {
  if (TRANS_B) { return bOff + n * p.K + k; }
  return bOff + k * p.N + n;
}

// The k loops step by 4 (16 for 'tiled'): loads past K are zeroed so the tail adds nothing (both
// operands are masked: unspecified values past a tensor may be inf/NaN, and 0·inf is NaN).

/** Zero the components of v whose k index (k0 + i) is past K. */
fn maskK4(v: vec4<f32>, k0: u32) -> vec4<f32> {
  return select(vec4<f32>(0.0), v, vec4<u32>(k0) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(p.K));
}

/** Zero v when k is past K. */
fn maskK1(v: vec4<f32>, k: u32) -> vec4<f32> {
  return select(vec4<f32>(0.0), v, k < p.K);
}

/** op(A)[m .. m + 3, k .. k + 3] as rows: result[i] = row m + i (zero past K; rows clamped into A). */
fn loadA4(m: u32, k: u32) -> mat4x4<f32> {
  if (TRANS_A) {
    // each load is 4 consecutive rows at one k; transpose the 4×4 block into rows
    let mc = min(m, (p.M - 1u) & ~3u);
    return transpose(mat4x4<f32>(
      maskK1(ldA(aIdx(mc, k)), k),
      maskK1(ldA(aIdx(mc, k + 1u)), k + 1u),
      maskK1(ldA(aIdx(mc, k + 2u)), k + 2u),
      maskK1(ldA(aIdx(mc, k + 3u)), k + 3u),
    ));
  }
  let ml = p.M - 1u;
  return mat4x4<f32>(
    maskK4(ldA(aIdx(min(m, ml), k)), k),
    maskK4(ldA(aIdx(min(m + 1u, ml), k)), k),
    maskK4(ldA(aIdx(min(m + 2u, ml), k)), k),
    maskK4(ldA(aIdx(min(m + 3u, ml), k)), k),
  );
}

/** op(B)[k .. k + 3, n .. n + 3] as rows: result[kk] = B row k + kk (zero past K; columns clamped into B). */
fn loadB4(k: u32, n: u32) -> mat4x4<f32> {
  if (TRANS_B) {
    // each load is 4 consecutive k of one column; transpose the 4×4 block into rows
    let nl = p.N - 1u;
    return transpose(mat4x4<f32>(
      maskK4(ldB(bIdx(k, min(n, nl))), k),
      maskK4(ldB(bIdx(k, min(n + 1u, nl))), k),
      maskK4(ldB(bIdx(k, min(n + 2u, nl))), k),
      maskK4(ldB(bIdx(k, min(n + 3u, nl))), k),
    ));
  }
  let nc = min(n, (p.N - 1u) & ~3u);
  return mat4x4<f32>(
    maskK1(ldB(bIdx(k, nc)), k),
    maskK1(ldB(bIdx(k + 1u, nc)), k + 1u),
    maskK1(ldB(bIdx(k + 2u, nc)), k + 2u),
    maskK1(ldB(bIdx(k + 3u, nc)), k + 3u),
  );
}

/** erf(x), Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7). */
fn erf_approx(x: f32) -> f32 {
  let ax = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * ax);
  let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  let y = 1.0 - poly * exp(-ax * ax);
  return select(-y, y, x >= 0.0);
}

fn activate(v: f32) -> f32 {
  if (p.act == 1u) { return max(v, 0.0); }
  if (p.act == 2u) { return 0.5 * v * (1.0 + erf_approx(v * 0.7071067811865476)); }
  if (p.act == 3u) {
    // clamp keeps tanh's argument where every implementation is exact to f32 (tanh(15) == 1.0f)
    let u = clamp(0.7978845608028654 * (v + 0.044715 * v * v * v), -15.0, 15.0);
    return 0.5 * v * (1.0 + tanh(u));
  }
  return v;
}

/** act(v + bias[n]) + residual[ci] for one output element (ci = element index in C). */
fn epilogue(v: f32, n: u32, ci: u32) -> f32 {
  var r = v;
  if ((p.flags & 1u) != 0u) { r = r + biasv[n]; }
  r = activate(r);
  if ((p.flags & 2u) != 0u) { r = r + resv[ci]; }
  return r;
}
