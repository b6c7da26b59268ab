// Inference batch norm on NCHW x [N, C, H, W] with per-channel stats [C], one element per invocation:
// y = (x - mean[c]) * inverseSqrt(var[c] + eps) * w[c] + b[c], c = (i / HW) % C, then relu when RELU.
// 1-D grid split over x/y (index = gid.x + gid.y * nwg.x * WG). See batchnorm_vec4.wgsl for HW % 4 == 0.
struct Params { n: u32, HW: u32, C: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> variance: array<f32>;
@group(0) @binding(4) var<storage, read> w: array<f32>;   // weight [C] (mean's buffer if unused)
@group(0) @binding(5) var<storage, read> b: array<f32>;   // bias [C] (mean's buffer if unused)
@group(0) @binding(6) var<storage, read_write> y: array<f32>;

override WG: u32 = 256;
override HAS_W: bool = false;
override HAS_B: bool = false;
override RELU: bool = false;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  let c = (i / p.HW) % p.C;
  var scale = inverseSqrt(variance[c] + p.eps);
  if (HAS_W) { scale *= w[c]; }
  var shift = -mean[c] * scale;
  if (HAS_B) { shift += b[c]; }
  var v = x[i] * scale + shift;
  if (RELU) { v = max(v, 0.0); }
  y[i] = v;
}
