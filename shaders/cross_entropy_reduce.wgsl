// Cross-entropy reduction: rowLoss [B] -> loss [1] = sum (SUM) or sum / count of non-ignored targets
// (mean; NaN when count is 0, as torch). One workgroup; fixed summation order, so deterministic.
struct Params { B: u32, ignore: i32, mean: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> rowLoss: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;

const WG: u32 = 256u;
var<workgroup> red: array<vec2f, WG>;   // (sum, count); counts < 2^24 are exact in f32

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  var acc = vec2f(0.0);
  for (var b = lid; b < p.B; b += WG) {
    acc += vec2f(rowLoss[b], select(1.0, 0.0, targets[b] == p.ignore));
  }
  red[lid] = acc;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let r = red[0];
    if (p.mean == 0u) { loss[0] = r.x; }
    else if (r.y == 0.0) { let nanBits = 0x7fc00000u; loss[0] = bitcast<f32>(nanBits); }  // 0 / 0, built at run time
    else { loss[0] = r.x / r.y; }
  }
}
