// Attention backward, pass 1: dq [BH, Tq, D4] (vec4). Each invocation owns two query rows
// (i0 = base + lid, i1 = base + WG + lid), so every k/v vec4 it loads serves both; blocks of BK keys.
// stats [BH*Tq] = (lse_i, Drow_i = rowsum(dOut * out)) from pass 0. Probabilities are recomputed from lse:
// P_ij = exp(scale q_i.k_j - lse_i) (0 where masked), dS_ij = P_ij (dOut_i.v_j - Drow_i),
// dq_i = scale * sum_j dS_ij k_j, accumulated in the dq rows. Uniform loop bounds, per-lane select.
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
const BK: u32 = 4u;       // keys per block (two rows × two scores per key; more compiles much slower on lavapipe)
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
  let st0 = stats[row0];
  let st1 = stats[row1];
  let li0 = select(0.0, st0.x, st0.x > LOWEST);   // a fully masked row (lse -inf) sees no key anyway
  let li1 = select(0.0, st1.x, st1.x > LOWEST);
  var kend = p.Tk;
  if (p.causal != 0u) { kend = min(p.Tk, base + 2u * WG); }
  // Reset explicitly per block (loop-scoped vars are not re-zeroed by Dawn + lavapipe).
  var s0: array<f32, BK>;
  var s1: array<f32, BK>;
  var dp0: array<f32, BK>;
  var dp1: array<f32, BK>;
  var ds0: array<f32, BK>;
  var ds1: array<f32, BK>;
  for (var j0 = 0u; j0 < kend; j0 += BK) {
    for (var u = 0u; u < BK; u++) { s0[u] = 0.0; s1[u] = 0.0; dp0[u] = 0.0; dp1[u] = 0.0; }
    for (var d = 0u; d < D4; d++) {
      let qa = q[qo0 + d];
      let qb = q[qo1 + d];
      let ga = dOut[qo0 + d];
      let gb = dOut[qo1 + d];
      for (var u = 0u; u < BK; u++) {
        let o = (kb + min(j0 + u, p.Tk - 1u)) * D4 + d;
        let kv = k[o];
        let vv = v[o];
        s0[u] += dot(qa, kv);
        s1[u] += dot(qb, kv);
        dp0[u] += dot(ga, vv);
        dp1[u] += dot(gb, vv);
      }
    }
    for (var u = 0u; u < BK; u++) {
      let j = j0 + u;
      var ok = j < kend;
      if (p.hasMask != 0u) { ok = ok && mask[b * p.Tk + min(j, p.Tk - 1u)] != 0.0; }
      let causal = p.causal != 0u;
      let p0 = select(0.0, exp(s0[u] * p.scale - li0), ok && (!causal || j <= i0));
      let p1 = select(0.0, exp(s1[u] * p.scale - li1), ok && (!causal || j <= i1));
      ds0[u] = p0 * (dp0[u] - st0.y) * p.scale;
      ds1[u] = p1 * (dp1[u] - st1.y) * p.scale;
    }
    for (var d = 0u; d < D4; d++) {
      var o0 = vec4f(0.0);
      var o1 = vec4f(0.0);
      if (j0 != 0u) { o0 = dq[qo0 + d]; o1 = dq[qo1 + d]; }
      for (var u = 0u; u < BK; u++) {
        let kv = k[(kb + min(j0 + u, p.Tk - 1u)) * D4 + d];
        o0 += ds0[u] * kv;
        o1 += ds1[u] * kv;
      }
      if (live0) { dq[qo0 + d] = o0; }
      if (live1) { dq[qo1 + d] = o1; }
    }
  }
}
