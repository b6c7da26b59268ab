// Fused AdamW step (PyTorch 1.13 torch.optim.AdamW, decoupled weight decay, optional amsgrad) over one optimizer arena chunk: [n4] vec4 of params, grads, exp_avg, exp_avg_sq (, max_exp_avg_sq).
// hyper (f32 words, one region per step): per group g at 8g: [1 - lr·weightDecay, beta1, 1 - beta1, beta2, 1 - beta2, eps, maximize, 0];
// per param j at segBase + 4j: [group (u32, 0xffffffff = skip this step), lr / (1 - beta1^t), sqrt(1 - beta2^t), 0] with t the param's step.
struct Params { n4: u32, blockBase: u32, segBase: u32, useClip: u32, gradScale: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<vec4f>;
@group(0) @binding(2) var<storage, read> grad: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> expAvg: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> expAvgSq: array<vec4f>;
@group(0) @binding(5) var<storage, read_write> maxExpAvgSq: array<vec4f>;
@group(0) @binding(6) var<storage, read> blockParam: array<u32>;
@group(0) @binding(7) var<storage, read> hyper: array<f32>;
@group(0) @binding(8) var<storage, read> clip: array<f32>; // [norm, coef] from grad_norm_finalize

override WG: u32 = 256u;
/** amsgrad: keep max_exp_avg_sq (otherwise maxExpAvgSq is a dummy and never touched). */
override AMSGRAD: bool = false;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n4) { return; }
  let rec = p.segBase + 4u * blockParam[p.blockBase + (i >> 4u)];
  let grp = bitcast<u32>(hyper[rec]);
  if (grp == 0xffffffffu) { return; }
  let stepSize = hyper[rec + 1u];
  let bc2Sqrt = hyper[rec + 2u];
  let h = 8u * grp;
  let decay = hyper[h];
  let beta1 = hyper[h + 1u];
  let omb1 = hyper[h + 2u];
  let beta2 = hyper[h + 3u];
  let omb2 = hyper[h + 4u];
  let eps = hyper[h + 5u];
  var scale = p.gradScale;
  if (p.useClip != 0u) { scale = scale * clip[1]; }
  var g = grad[i];
  if (scale != 1.0) { g = g * scale; }
  if (hyper[h + 6u] != 0.0) { g = -g; }
  let x = param[i] * decay;
  let m = expAvg[i] * beta1 + omb1 * g;
  let v = expAvgSq[i] * beta2 + omb2 * g * g;
  expAvg[i] = m;
  expAvgSq[i] = v;
  var vh = v;
  if (AMSGRAD) {
    vh = max(maxExpAvgSq[i], v);
    maxExpAvgSq[i] = vh;
  }
  let denom = sqrt(vh) / bc2Sqrt + eps;
  param[i] = x - stepSize * (m / denom);
}
