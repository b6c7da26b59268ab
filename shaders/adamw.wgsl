// Fused AdamW step (PyTorch 1.13 torch.optim.AdamW, decoupled weight decay, optional amsgrad) over one optimizer arena chunk: [n4] vec4 of params, grads, exp_avg, exp_avg_sq (, max_exp_avg_sq).
// hyper (vec4 of 32-bit words, one region per step): per group g at 2g, 2g+1: [1 - lr·weightDecay, beta1, 1 - beta1, beta2], [1 - beta2, eps, maximize, 0];
// per param j at segBase + j: [group (u32, 0xffffffff = skip this step), lr / (1 - beta1^t), sqrt(1 - beta2^t), 0] with t the param's step.
// segBase: first param record (vec4 index); blockBase: this chunk's first entry in blockParam.
struct Params { n4: u32, blockBase: u32, segBase: u32, useClip: u32, gradScale: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<vec4f>;
@group(0) @binding(2) var<storage, read> grad: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> expAvg: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> expAvgSq: array<vec4f>;
@group(0) @binding(5) var<storage, read_write> maxExpAvgSq: array<vec4f>;
@group(0) @binding(6) var<storage, read> blockParam: array<u32>;
@group(0) @binding(7) var<storage, read> hyper: array<vec4u>; // f32 values as bits (u32 fields stay exact: no float load can flush them)
@group(0) @binding(8) var<storage, read> clip: array<f32>; // [norm, coef] from grad_norm_finalize

override WG: u32 = 256u;
/** amsgrad: keep max_exp_avg_sq (otherwise maxExpAvgSq is a dummy and never touched). */
override AMSGRAD: bool = false;

/** vec4s per invocation (consecutive, inside one 16-vec4 block so they share the hyper-parameter record): CPU drivers
 * pay per invocation, and the record loads are amortised. PER divides 16. */
override PER: u32 = 4u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let first = (gid.x + gid.y * nwg.x * WG) * PER;
  if (first >= p.n4) { return; }
  let rec = hyper[p.segBase + blockParam[p.blockBase + (first >> 4u)]];
  let grp = rec.x;
  if (grp == 0xffffffffu) { return; }
  let stepSize = bitcast<f32>(rec.y);
  let bc2Sqrt = bitcast<f32>(rec.z);
  let ga = bitcast<vec4f>(hyper[2u * grp]);
  let gb = bitcast<vec4f>(hyper[2u * grp + 1u]);
  let decay = ga.x;
  let beta1 = ga.y;
  let omb1 = ga.z;
  let beta2 = ga.w;
  let omb2 = gb.x;
  let eps = gb.y;
  var scale = p.gradScale;
  if (p.useClip != 0u) { scale = scale * clip[1]; }
  let last = min(first + PER, p.n4);
  for (var i = first; i < last; i++) {
    var g = grad[i];
    if (scale != 1.0) { g = g * scale; }
    if (gb.z != 0.0) { g = -g; }
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
}
