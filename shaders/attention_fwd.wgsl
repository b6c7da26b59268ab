// Fused scaled-dot-product attention forward: q [BH, Tq, D4], k/v [BH, Tk, D4] (vec4: head dim 4·D4, the
// wrapper zero-pads other head dims), mask [B, Tk] (0 = padding)
// -> out [BH, Tq, D4], lse [BH, Tq] (logsumexp of the masked, scaled scores; -inf for a fully masked row,
// whose output is 0). One invocation per query row, one kernel: for each block of BK keys, scores ->
// mask -> online-softmax rescale -> out_row = out_row * alpha + sum_u p_u v_u. The output row is the
// running accumulator (per-invocation state is BK scores, not a head row: small code and register use on
// every adapter). No T x T matrix. causal: key j visible to query i iff j <= i (top-left, as torch SDPA).
// Loop bounds are workgroup-uniform (k/v addresses uniform across lanes), per-lane masking uses select.
// vec4 loads along the head dim: about 2x faster than scalar loads on lavapipe.
struct Params { BH: u32, H: u32, Tq: u32, Tk: u32, D4: u32, scale: f32, causal: u32, hasMask: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4f>;
@group(0) @binding(2) var<storage, read> k: array<vec4f>;
@group(0) @binding(3) var<storage, read> v: array<vec4f>;
@group(0) @binding(4) var<storage, read> mask: array<f32>;   // unread when hasMask == 0
@group(0) @binding(5) var<storage, read_write> out: array<vec4f>;
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;

override WG: u32 = 64u;   // query rows per workgroup
const BK: u32 = 8u;       // keys per block: 8 measured best on lavapipe (larger: spills, 10x compile time)
const LOWEST: f32 = -3.0e38;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let bh = wid.y + wid.z * nwg.y;
  if (bh >= p.BH) { return; }
  let b = bh / p.H;
  let D4 = p.D4;
  let i = wid.x * WG + lid;
  let live = i < p.Tq;
  let qrow = bh * p.Tq + min(i, p.Tq - 1u);
  let qo = qrow * D4;
  let kb = bh * p.Tk;
  var m = LOWEST;   // running max of visible scores
  var l = 0.0;      // running sum of exp(score - m)
  var kend = p.Tk;  // uniform: the workgroup's last row bounds the causal range
  if (p.causal != 0u) { kend = min(p.Tk, wid.x * WG + WG); }
  var s: array<f32, BK>;
  for (var j0 = 0u; j0 < kend; j0 += BK) {
    // Reset explicitly: a var declared inside the loop body was observed NOT to be re-zeroed per
    // iteration (Dawn + lavapipe), although WGSL requires it.
    for (var u = 0u; u < BK; u++) { s[u] = 0.0; }
    for (var d = 0u; d < D4; d++) {
      let qd = q[qo + d];
      for (var u = 0u; u < BK; u++) { s[u] += dot(qd, k[(kb + min(j0 + u, p.Tk - 1u)) * D4 + d]); }
    }
    var bm = LOWEST;
    for (var u = 0u; u < BK; u++) {
      let j = j0 + u;
      var ok = j < kend && (p.causal == 0u || j <= i);
      if (p.hasMask != 0u) { ok = ok && mask[b * p.Tk + min(j, p.Tk - 1u)] != 0.0; }
      s[u] = select(LOWEST, s[u] * p.scale, ok);   // masked: LOWEST, weight 0 below
      bm = max(bm, s[u]);
    }
    let mn = max(m, bm);          // = m when this lane sees nothing in the block
    let alpha = exp(m - mn);
    var pw: array<f32, BK>;
    var ps = 0.0;
    for (var u = 0u; u < BK; u++) {
      pw[u] = select(0.0, exp(s[u] - mn), s[u] > LOWEST);
      ps += pw[u];
    }
    l = l * alpha + ps;
    m = mn;
    for (var d = 0u; d < D4; d++) {
      var o = vec4f(0.0);
      if (j0 != 0u) { o = out[qo + d] * alpha; }
      for (var u = 0u; u < BK; u++) { o += pw[u] * v[(kb + min(j0 + u, p.Tk - 1u)) * D4 + d]; }
      if (live) { out[qo + d] = o; }
    }
  }
  if (!live) { return; }
  let inv = select(0.0, 1.0 / l, l > 0.0);
  for (var d = 0u; d < D4; d++) { out[qo + d] *= inv; }
  let ninfBits = 0xff800000u;   // -inf, built at run time (a constant infinity is a WGSL error)
  lse[qrow] = select(bitcast<f32>(ninfBits), m + log(l), l > 0.0);
}
