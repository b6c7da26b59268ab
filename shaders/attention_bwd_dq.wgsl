// Attention backward, pass 1: dq [BH, Tq, D4] (vec4), one invocation per query row, blocks of BK keys.
// stats [BH*Tq] = (lse_i, Drow_i = rowsum(dOut * out)) from pass 0. Probabilities are recomputed from lse:
// P_ij = exp(scale q_i.k_j - lse_i) (0 where masked), dS_ij = P_ij (dOut_i.v_j - Drow_i),
// dq_i = scale * sum_j dS_ij k_j, accumulated in the dq row. Uniform loop bounds, per-lane select.
struct Params { BH: u32, H: u32, Tq: u32, Tk: u32, D4: u32, scale: f32, causal: u32, hasMask: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4f>;
@group(0) @binding(2) var<storage, read> k: array<vec4f>;
@group(0) @binding(3) var<storage, read> v: array<vec4f>;
@group(0) @binding(4) var<storage, read> mask: array<f32>;
@group(0) @binding(5) var<storage, read> dOut: array<vec4f>;
@group(0) @binding(6) var<storage, read> stats: array<vec2f>;
@group(0) @binding(7) var<storage, read_write> dq: array<vec4f>;

override WG: u32 = 64u;
const BK: u32 = 4u;       // keys per block (two scores per key here; 8 compiles 3x slower on lavapipe)
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
  let st = stats[qrow];
  let li = select(0.0, st.x, st.x > LOWEST);   // a fully masked row (lse -inf) sees no key anyway
  var kend = p.Tk;
  if (p.causal != 0u) { kend = min(p.Tk, wid.x * WG + WG); }
  var s: array<f32, BK>;
  var dp: array<f32, BK>;
  for (var j0 = 0u; j0 < kend; j0 += BK) {
    // Reset explicitly: a var declared inside the loop body was observed NOT to be re-zeroed per
    // iteration (Dawn + lavapipe), although WGSL requires it.
    for (var u = 0u; u < BK; u++) { s[u] = 0.0; dp[u] = 0.0; }
    for (var d = 0u; d < D4; d++) {
      let qd = q[qo + d];
      let gd = dOut[qo + d];
      for (var u = 0u; u < BK; u++) {
        let o = (kb + min(j0 + u, p.Tk - 1u)) * D4 + d;
        s[u] += dot(qd, k[o]);
        dp[u] += dot(gd, v[o]);
      }
    }
    var ds: array<f32, BK>;
    for (var u = 0u; u < BK; u++) {
      let j = j0 + u;
      var ok = j < kend && (p.causal == 0u || j <= i);
      if (p.hasMask != 0u) { ok = ok && mask[b * p.Tk + min(j, p.Tk - 1u)] != 0.0; }
      let pij = select(0.0, exp(s[u] * p.scale - li), ok);
      ds[u] = pij * (dp[u] - st.y) * p.scale;
    }
    for (var d = 0u; d < D4; d++) {
      var o = vec4f(0.0);
      if (j0 != 0u) { o = dq[qo + d]; }
      for (var u = 0u; u < BK; u++) { o += ds[u] * k[(kb + min(j0 + u, p.Tk - 1u)) * D4 + d]; }
      if (live) { dq[qo + d] = o; }
    }
  }
}
