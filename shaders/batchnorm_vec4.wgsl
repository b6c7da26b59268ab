// Inference batch norm on NCHW x [N, C, H, W] with H*W % 4 == 0, four elements per invocation:
// y = (x - mean[c]) * inverseSqrt(var[c] + eps) * w[c] + b[c], then relu when RELU.
// x and y are viewed as vec4 [N*C*H*W / 4]; 1-D grid split over x/y (index = gid.x + gid.y * nwg.x * WG).
struct Params { n4: u32, HW4: u32, C: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> variance: array<f32>;
@group(0) @binding(4) var<storage, read> w: array<f32>;   // weight [C] (mean's buffer if unused)
@group(0) @binding(5) var<storage, read> b: array<f32>;   // bias [C] (mean's buffer if unused)
@group(0) @binding(6) var<storage, read_write> y: array<vec4f>;

override WG: u32 = 256;
override HAS_W: bool = false;
override HAS_B: bool = false;
override RELU: bool = false;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n4) { return; }
  let c = (i / p.HW4) % p.C;
  var scale = inverseSqrt(variance[c] + p.eps);
  if (HAS_W) { scale *= w[c]; }
  var shift = -mean[c] * scale;
  if (HAS_B) { shift += b[c]; }
  var v = x[i] * scale + shift;
  if (RELU) { v = max(v, vec4f(0.0)); }
  y[i] = v;
}
