// Fused SGD step (PyTorch 1.13 torch.optim.SGD) over one optimizer arena chunk: [n4] vec4 of params, grads, momentum buffers; per-element group lookup via a 64-element block → param table.
// hyper (f32 words, one region per step): per group g at 8g: [lr, weightDecay, momentum, 1 - dampening, nesterov, maximize, 0, 0];
// per param j at segBase + 4j: [group (u32, 0xffffffff = skip this step), first (u32: momentum buffer not yet initialised), 0, 0].
struct Params { n4: u32, blockBase: u32, segBase: u32, useClip: u32, gradScale: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<vec4f>;
@group(0) @binding(2) var<storage, read> grad: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> momentumBuf: array<vec4f>;
@group(0) @binding(4) var<storage, read> blockParam: array<u32>;
@group(0) @binding(5) var<storage, read> hyper: array<f32>;
@group(0) @binding(6) var<storage, read> clip: array<f32>; // [norm, coef] from grad_norm_finalize

override WG: u32 = 256u;
/** False when no momentum arena exists (momentumBuf is then a dummy and never touched). */
override HAS_BUF: bool = true;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n4) { return; }
  let rec = p.segBase + 4u * blockParam[p.blockBase + (i >> 4u)];
  let grp = bitcast<u32>(hyper[rec]);
  if (grp == 0xffffffffu) { return; }
  let h = 8u * grp;
  let lr = hyper[h];
  let wd = hyper[h + 1u];
  let mom = hyper[h + 2u];
  let omd = hyper[h + 3u];
  var scale = p.gradScale;
  if (p.useClip != 0u) { scale = scale * clip[1]; }
  var d = grad[i];
  if (scale != 1.0) { d = d * scale; }
  if (hyper[h + 5u] != 0.0) { d = -d; }
  let x = param[i];
  if (wd != 0.0) { d = d + wd * x; }
  if (HAS_BUF && mom != 0.0) {
    var b = d;
    if (bitcast<u32>(hyper[rec + 1u]) == 0u) { b = momentumBuf[i] * mom + omd * d; }
    momentumBuf[i] = b;
    if (hyper[h + 4u] != 0.0) { d = d + mom * b; } else { d = b; }
  }
  param[i] = x - lr * d;
}
