// Layer norm over the last dim D of x [rows, D] (optionally of h = x + residual): two-pass (shifted
// mean, then squared deviations from it) biased variance, y = (h - mean) / sqrt(var + eps) * w + b, w and b [D] (optional).
// T threads share a row (tree reduction in workgroup memory when T > 1); WG / T rows per workgroup.
struct Params { rows: u32, D: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> res: array<f32>;   // residual [rows, D] (x's buffer if unused)
@group(0) @binding(3) var<storage, read> w: array<f32>;     // weight [D] (x's buffer if unused)
@group(0) @binding(4) var<storage, read> b: array<f32>;     // bias [D] (x's buffer if unused)
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

override WG: u32 = 256;   // threads per workgroup (power of two)
override T: u32 = 1;      // threads per row (power of two, divides WG)
override HAS_RES: bool = false;
override HAS_W: bool = false;
override HAS_B: bool = false;

var<workgroup> red: array<f32, WG>;

fn h(k: u32) -> f32 {
  if (HAS_RES) { return x[k] + res[k]; }
  return x[k];
}

// Sum of v over the T lanes that share a row; every lane gets the result.
fn rowSum(v: f32, lid: u32, lane: u32) -> f32 {
  if (T == 1u) { return v; }
  red[lid] = v;
  workgroupBarrier();
  for (var s = T / 2u; s > 0u; s = s / 2u) {
    if (lane < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  let r = red[lid - lane];
  workgroupBarrier(); // red is reused by the next reduction
  return r;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let lane = lid % T;
  let row = (wid.x + wid.y * nwg.x) * (WG / T) + lid / T;
  let n = select(0u, p.D, row < p.rows);   // dead lanes still take part in the barriers
  let base = row * p.D;
  let invD = 1.0 / f32(p.D);

  // Work relative to k0 = h[0]: h - k0 is exact for values near the row's offset, so a row like
  // 1000 ± 2 keeps the low bits that a plain f32 sum (and an f32 mean near 1000) would round away.
  var k0 = 0.0;
  if (n > 0u) { k0 = h(base); }
  var s = 0.0;
  for (var j = lane; j < n; j += T) { s += h(base + j) - k0; }
  let mean = rowSum(s, lid, lane) * invD;   // mean of h - k0

  var q = 0.0;
  for (var j = lane; j < n; j += T) { let d = (h(base + j) - k0) - mean; q += d * d; }
  let rstd = inverseSqrt(rowSum(q, lid, lane) * invD + p.eps);

  for (var j = lane; j < n; j += T) {
    var v = ((h(base + j) - k0) - mean) * rstd;
    if (HAS_W) { v *= w[j]; }
    if (HAS_B) { v += b[j]; }
    y[base + j] = v;
  }
}
