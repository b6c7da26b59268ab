// Fused SGD step (PyTorch 1.13 torch.optim.SGD) over one optimizer arena chunk: [n4] vec4 of params, grads, momentum buffers; per-element group lookup via a 64-element block → param table.
// hyper (vec4 of 32-bit words, one region per step): per group g at 2g, 2g+1: [lr, weightDecay, momentum, 1 - dampening], [nesterov, maximize, 0, 0];
// per param j at segBase + j: [group (u32, 0xffffffff = skip this step), first (u32: momentum buffer not yet initialised), 0, 0].
// segBase: first param record (vec4 index); blockBase: this chunk's first entry in blockParam.
struct Params { n4: u32, blockBase: u32, segBase: u32, useClip: u32, gradScale: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<vec4f>;
@group(0) @binding(2) var<storage, read> grad: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> momentumBuf: array<vec4f>;
@group(0) @binding(4) var<storage, read> blockParam: array<u32>;
@group(0) @binding(5) var<storage, read> hyper: array<vec4u>; // f32 values as bits (u32 fields stay exact: no float load can flush them)
@group(0) @binding(6) var<storage, read> clip: array<f32>; // [norm, coef] from grad_norm_finalize

override WG: u32 = 256u;
/** False when no momentum arena exists (momentumBuf is then a dummy and never touched). */
override HAS_BUF: bool = true;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n4) { return; }
  let rec = hyper[p.segBase + blockParam[p.blockBase + (i >> 4u)]];
  let grp = rec.x;
  if (grp == 0xffffffffu) { return; }
  let ga = bitcast<vec4f>(hyper[2u * grp]);
  let gb = bitcast<vec4f>(hyper[2u * grp + 1u]);
  let lr = ga.x;
  let wd = ga.y;
  let mom = ga.z;
  let omd = ga.w;
  var scale = p.gradScale;
  if (p.useClip != 0u) { scale = scale * clip[1]; }
  var d = grad[i];
  if (scale != 1.0) { d = d * scale; }
  if (gb.y != 0.0) { d = -d; }
  let x = param[i];
  if (wd != 0.0) { d = d + wd * x; }
  if (HAS_BUF && mom != 0.0) {
    var b = d;
    if (rec.y == 0u) { b = momentumBuf[i] * mom + omd * d; }
    momentumBuf[i] = b;
    if (gb.x != 0.0) { d = d + mom * b; } else { d = b; }
  }
  param[i] = x - lr * d;
}
