// Attention backward, pass 2: dk, dv [BH, Tk, D4] (vec4). Each invocation owns two key rows
// (j0 = base + lid, j1 = base + WG + lid), so every q/dOut vec4 it loads serves both; blocks of BQ queries:
// P_ij = exp(scale q_i.k_j - lse_i), dv_j = sum_i P_ij dOut_i, dk_j = scale * sum_i P_ij (dOut_i.v_j - Drow_i) q_i,
// with (lse, Drow) from pass 0, accumulated in the dk/dv rows. A padded key gets 0. Any query that sees key j
// is not fully masked, so exp only meets finite lse values. Uniform loop bounds, per-lane select.
struct Params { BH: u32, H: u32, Tq: u32, Tk: u32, D4: u32, scale: f32, causal: u32, hasMask: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4f>;
@group(0) @binding(2) var<storage, read> k: array<vec4f>;
@group(0) @binding(3) var<storage, read> v: array<vec4f>;
@group(0) @binding(4) var<storage, read> mask: array<f32>;
@group(0) @binding(5) var<storage, read> dOut: array<vec4f>;
@group(0) @binding(6) var<storage, read> stats: array<vec2f>;   // (lse, Drow) per query row
@group(0) @binding(7) var<storage, read_write> dk: array<vec4f>;
@group(0) @binding(8) var<storage, read_write> dv: array<vec4f>;

override WG: u32 = 64u;
const BQ: u32 = 4u;       // queries per block (two rows × two scores per query; more compiles much slower on lavapipe)

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let bh = wid.y + wid.z * nwg.y;
  if (bh >= p.BH) { return; }
  let b = bh / p.H;
  let D4 = p.D4;
  let qb = bh * p.Tq;
  let base = wid.x * 2u * WG;
  let j0 = base + lid;
  let j1 = base + WG + lid;
  let live0 = j0 < p.Tk;
  let live1 = j1 < p.Tk;
  let ko0 = (bh * p.Tk + min(j0, p.Tk - 1u)) * D4;
  let ko1 = (bh * p.Tk + min(j1, p.Tk - 1u)) * D4;
  var ok0 = live0;
  var ok1 = live1;
  if (p.hasMask != 0u) {
    ok0 = ok0 && mask[b * p.Tk + min(j0, p.Tk - 1u)] != 0.0;
    ok1 = ok1 && mask[b * p.Tk + min(j1, p.Tk - 1u)] != 0.0;
  }
  var i0 = 0u;   // uniform: the workgroup's first key bounds the causal range
  if (p.causal != 0u) { i0 = min(base, p.Tq); }
  // Reset explicitly per block (loop-scoped vars are not re-zeroed by Dawn + lavapipe).
  var s0: array<f32, BQ>;
  var s1: array<f32, BQ>;
  var dp0: array<f32, BQ>;
  var dp1: array<f32, BQ>;
  var pw0: array<f32, BQ>;
  var pw1: array<f32, BQ>;
  var ds0: array<f32, BQ>;
  var ds1: array<f32, BQ>;
  for (var ib = i0; ib < p.Tq; ib += BQ) {
    for (var u = 0u; u < BQ; u++) { s0[u] = 0.0; s1[u] = 0.0; dp0[u] = 0.0; dp1[u] = 0.0; }
    for (var d = 0u; d < D4; d++) {
      let ka = k[ko0 + d];
      let kc = k[ko1 + d];
      let va = v[ko0 + d];
      let vc = v[ko1 + d];
      for (var u = 0u; u < BQ; u++) {
        let o = (qb + min(ib + u, p.Tq - 1u)) * D4 + d;
        let qv = q[o];
        let gv = dOut[o];
        s0[u] += dot(ka, qv);
        s1[u] += dot(kc, qv);
        dp0[u] += dot(va, gv);
        dp1[u] += dot(vc, gv);
      }
    }
    for (var u = 0u; u < BQ; u++) {
      let i = ib + u;
      let st = stats[qb + min(i, p.Tq - 1u)];
      let causal = p.causal != 0u;
      let vis0 = ok0 && i < p.Tq && (!causal || i >= j0);
      let vis1 = ok1 && i < p.Tq && (!causal || i >= j1);
      pw0[u] = select(0.0, exp(s0[u] * p.scale - select(0.0, st.x, vis0)), vis0);
      pw1[u] = select(0.0, exp(s1[u] * p.scale - select(0.0, st.x, vis1)), vis1);
      ds0[u] = pw0[u] * (dp0[u] - st.y) * p.scale;
      ds1[u] = pw1[u] * (dp1[u] - st.y) * p.scale;
    }
    for (var d = 0u; d < D4; d++) {
      var gk0 = vec4f(0.0);
      var gk1 = vec4f(0.0);
      var gv0 = vec4f(0.0);
      var gv1 = vec4f(0.0);
      if (ib != i0) { gk0 = dk[ko0 + d]; gk1 = dk[ko1 + d]; gv0 = dv[ko0 + d]; gv1 = dv[ko1 + d]; }
      for (var u = 0u; u < BQ; u++) {
        let o = (qb + min(ib + u, p.Tq - 1u)) * D4 + d;
        let qv = q[o];
        let gv = dOut[o];
        gv0 += pw0[u] * gv;
        gv1 += pw1[u] * gv;
        gk0 += ds0[u] * qv;
        gk1 += ds1[u] * qv;
      }
      if (live0) { dk[ko0 + d] = gk0; dv[ko0 + d] = gv0; }
      if (live1) { dk[ko1 + d] = gk1; dv[ko1 + d] = gv1; }
    }
  }
  if (i0 >= p.Tq) {   // no query block at all (causal keys past the last query)
    for (var d = 0u; d < D4; d++) {
      if (live0) { dk[ko0 + d] = vec4f(0.0); dv[ko0 + d] = vec4f(0.0); }
      if (live1) { dk[ko1 + d] = vec4f(0.0); dv[ko1 + d] = vec4f(0.0); }
    }
  }
}
