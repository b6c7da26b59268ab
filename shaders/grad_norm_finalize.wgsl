// Global gradient norm, stage 2 (one workgroup): total = sqrt(Σ partials)·gradScale (max·gradScale when INF) over [count] partials, in fixed order;
// writes norm[0] = total and clip = [total, min(1, maxNorm / (total + 1e-6))] (torch.nn.utils.clip_grad_norm_'s clamped coefficient).
struct Params { count: u32, maxNorm: f32, gradScale: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> norm: array<f32>;
@group(0) @binding(3) var<storage, read_write> clip: array<f32>;

const WG: u32 = 256u;
override INF: bool = false;

var<workgroup> sh: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  var acc = 0.0;
  for (var j = lid; j < p.count; j += WG) {
    if (INF) { acc = max(acc, partials[j]); } else { acc = acc + partials[j]; }
  }
  sh[lid] = acc;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) {
      if (INF) { sh[lid] = max(sh[lid], sh[lid + s]); } else { sh[lid] = sh[lid] + sh[lid + s]; }
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    var total = sh[0];
    if (!INF) { total = sqrt(total); }
    total = total * p.gradScale;
    norm[0] = total;
    clip[0] = total;
    clip[1] = min(1.0, p.maxNorm / (total + 1e-6));
  }
}
