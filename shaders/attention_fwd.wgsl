// Fused scaled-dot-product attention forward: q [BH, Tq, D4], k/v [BH, Tk, D4] (vec4: head dim 4·D4, the
// wrapper zero-pads other head dims), mask [B, Tk] (0 = padding)
// -> out [BH, Tq, D4], lse [BH, Tq] (logsumexp of the masked, scaled scores; -inf for a fully masked row,
// whose output is 0). One kernel: for each block of BK keys, scores -> mask -> online-softmax rescale ->
// out_row = out_row * alpha + sum_u p_u v_u. The output rows are the running accumulators (per-invocation
// state is a few scores, not a head row: small code and registers on every adapter). No T x T matrix.
// Each invocation owns two query rows, i0 = base + lid and i1 = base + WG + lid, so every k/v vec4 it loads
// serves both (1.8x faster than one row on lavapipe). causal: key j visible to query i iff j <= i
// (top-left aligned, as torch SDPA is_causal). Loop bounds are workgroup-uniform (k/v addresses uniform
// across lanes); per-lane masking uses select.
struct Params { BH: u32, H: u32, Tq: u32, Tk: u32, D4: u32, scale: f32, causal: u32, hasMask: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4f>;
@group(0) @binding(2) var<storage, read> k: array<vec4f>;
@group(0) @binding(3) var<storage, read> v: array<vec4f>;
@group(0) @binding(4) var<storage, read> mask: array<f32>;   // unread when hasMask == 0
@group(0) @binding(5) var<storage, read_write> out: array<vec4f>;
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;

override WG: u32 = 64u;   // invocations per workgroup (2·WG query rows)
const BK: u32 = 8u;       // keys per block: 8 with two rows measured best on lavapipe (more: spills, slow compiles)
const LOWEST: f32 = -3.0e38;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let bh = wid.y + wid.z * nwg.y;
  if (bh >= p.BH) { return; }
  let b = bh / p.H;
  let D4 = p.D4;
  let kb = bh * p.Tk;
  let base = wid.x * 2u * WG;
  let i0 = base + lid;
  let i1 = base + WG + lid;
  let live0 = i0 < p.Tq;
  let live1 = i1 < p.Tq;
  let row0 = bh * p.Tq + min(i0, p.Tq - 1u);
  let row1 = bh * p.Tq + min(i1, p.Tq - 1u);
  let qo0 = row0 * D4;
  let qo1 = row1 * D4;
  var m0 = LOWEST;   // running max of visible scores
  var m1 = LOWEST;
  var l0 = 0.0;      // running sum of exp(score - m)
  var l1 = 0.0;
  var kend = p.Tk;   // uniform: the workgroup's last row bounds the causal range
  if (p.causal != 0u) { kend = min(p.Tk, base + 2u * WG); }
  // Declared outside the loop and reset explicitly: a var declared inside a loop body was observed NOT
  // to be re-zeroed per iteration (Dawn + lavapipe), although WGSL requires it.
  var s0: array<f32, BK>;
  var s1: array<f32, BK>;
  var w0: array<f32, BK>;
  var w1: array<f32, BK>;
  for (var j0 = 0u; j0 < kend; j0 += BK) {
    for (var u = 0u; u < BK; u++) { s0[u] = 0.0; s1[u] = 0.0; }
    for (var d = 0u; d < D4; d++) {
      let qa = q[qo0 + d];
      let qb = q[qo1 + d];
      for (var u = 0u; u < BK; u++) {
        let kv = k[(kb + min(j0 + u, p.Tk - 1u)) * D4 + d];
        s0[u] += dot(qa, kv);
        s1[u] += dot(qb, kv);
      }
    }
    var bm0 = LOWEST;
    var bm1 = LOWEST;
    for (var u = 0u; u < BK; u++) {
      let j = j0 + u;
      var ok = j < kend;
      if (p.hasMask != 0u) { ok = ok && mask[b * p.Tk + min(j, p.Tk - 1u)] != 0.0; }
      let causal = p.causal != 0u;
      s0[u] = select(LOWEST, s0[u] * p.scale, ok && (!causal || j <= i0));   // masked: LOWEST, weight 0
      s1[u] = select(LOWEST, s1[u] * p.scale, ok && (!causal || j <= i1));
      bm0 = max(bm0, s0[u]);
      bm1 = max(bm1, s1[u]);
    }
    let mn0 = max(m0, bm0);       // = m when this row sees nothing in the block
    let mn1 = max(m1, bm1);
    let a0 = exp(m0 - mn0);
    let a1 = exp(m1 - mn1);
    var ps0 = 0.0;
    var ps1 = 0.0;
    for (var u = 0u; u < BK; u++) {
      w0[u] = select(0.0, exp(s0[u] - mn0), s0[u] > LOWEST);
      w1[u] = select(0.0, exp(s1[u] - mn1), s1[u] > LOWEST);
      ps0 += w0[u];
      ps1 += w1[u];
    }
    l0 = l0 * a0 + ps0;
    l1 = l1 * a1 + ps1;
    m0 = mn0;
    m1 = mn1;
    for (var d = 0u; d < D4; d++) {
      var o0 = vec4f(0.0);
      var o1 = vec4f(0.0);
      if (j0 != 0u) { o0 = out[qo0 + d] * a0; o1 = out[qo1 + d] * a1; }
      for (var u = 0u; u < BK; u++) {
        let vv = v[(kb + min(j0 + u, p.Tk - 1u)) * D4 + d];
        o0 += w0[u] * vv;
        o1 += w1[u] * vv;
      }
      if (live0) { out[qo0 + d] = o0; }
      if (live1) { out[qo1 + d] = o1; }
    }
  }
  let ninfBits = 0xff800000u;   // -inf, built at run time (a constant infinity is a WGSL error)
  let ninf = bitcast<f32>(ninfBits);
  if (live0) {
    let inv = select(0.0, 1.0 / l0, l0 > 0.0);
    for (var d = 0u; d < D4; d++) { out[qo0 + d] *= inv; }
    lse[row0] = select(ninf, m0 + log(l0), l0 > 0.0);
  }
  if (live1) {
    let inv = select(0.0, 1.0 / l1, l1 > 0.0);
    for (var d = 0u; d < D4; d++) { out[qo1 + d] *= inv; }
    lse[row1] = select(ninf, m1 + log(l1), l1 > 0.0);
  }
}
