// Layer norm training forward over the last dim: x [rows, D] -> y [rows, D], mean [rows], rstd [rows]
// (saved for layernorm backward). y = (x - mean) * rstd * w + b, rstd = 1 / sqrt(var + eps), two-pass
// variance. T threads share a row (tree reduction in workgroup memory when T > 1); WG / T rows per workgroup.
struct Params { rows: u32, D: u32, eps: f32, hasW: u32, hasB: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;   // [D], unread when hasW == 0
@group(0) @binding(3) var<storage, read> b: array<f32>;   // [D], unread when hasB == 0
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> mean: array<f32>;
@group(0) @binding(6) var<storage, read_write> rstd: array<f32>;

override WG: u32 = 256u;
override T: u32 = 1u;

var<workgroup> red: array<f32, WG>;

// Sum of v over the T lanes of a row; every lane gets it. Dead rows still call it (uniform barriers).
fn rowSum(v: f32, lid: u32, lane: u32) -> f32 {
  if (T == 1u) { return v; }
  red[lid] = v;
  workgroupBarrier();
  for (var s = T / 2u; s > 0u; s = s / 2u) {
    if (lane < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  let r = red[lid - lane];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let lane = lid % T;
  let row = (wid.x + wid.y * nwg.x) * (WG / T) + lid / T;
  let live = row < p.rows;
  let n = select(0u, p.D, live);
  let base = row * p.D;
  let inv = 1.0 / f32(p.D);

  var s = 0.0;
  for (var j = lane; j < n; j += T) { s += x[base + j]; }
  let m = rowSum(s, lid, lane) * inv;

  var q = 0.0;
  for (var j = lane; j < n; j += T) { let d = x[base + j] - m; q += d * d; }
  let rs = inverseSqrt(rowSum(q, lid, lane) * inv + p.eps);

  for (var j = lane; j < n; j += T) {
    var v = (x[base + j] - m) * rs;
    if (p.hasW != 0u) { v = v * w[j]; }
    if (p.hasB != 0u) { v = v + b[j]; }
    y[base + j] = v;
  }
  if (live && lane == 0u) {
    mean[row] = m;
    rstd[row] = rs;
  }
}
