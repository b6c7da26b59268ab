// Batch-norm training forward, normalisation: y = (x - mean[c]) * invstd[c] * weight[c] + bias[c]; x, y [N,C,H,W], 1-D.
struct Params { n: u32, C: u32, HW: u32 }
override HAS_WEIGHT: bool = true;
override HAS_BIAS: bool = true;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> invstd: array<f32>;
@group(0) @binding(4) var<storage, read> weight: array<f32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  let c = (i / p.HW) % p.C;
  var scale = invstd[c];
  if (HAS_WEIGHT) { scale *= weight[c]; }
  var v = (x[i] - mean[c]) * scale;
  if (HAS_BIAS) { v += bias[c]; }
  y[i] = v;
}
