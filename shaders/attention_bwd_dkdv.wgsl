// Attention backward, pass 2: dk, dv [BH, Tk, D4] (vec4), one invocation per key row j, blocks of BQ queries:
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
const BQ: u32 = 4u;       // queries per block (two scores per query here; 8 is slower on lavapipe)
const LOWEST: f32 = -3.0e38;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let bh = wid.y + wid.z * nwg.y;
  if (bh >= p.BH) { return; }
  let b = bh / p.H;
  let D4 = p.D4;
  let j = wid.x * WG + lid;
  let live = j < p.Tk;
  let ko = (bh * p.Tk + min(j, p.Tk - 1u)) * D4;
  let qb = bh * p.Tq;
  var keyOk = live;
  if (p.hasMask != 0u) { keyOk = keyOk && mask[b * p.Tk + min(j, p.Tk - 1u)] != 0.0; }
  var i0 = 0u;   // uniform: the workgroup's first key bounds the causal range
  if (p.causal != 0u) { i0 = min(wid.x * WG, p.Tq); }
  var s: array<f32, BQ>;
  var dp: array<f32, BQ>;
  for (var ib = i0; ib < p.Tq; ib += BQ) {
    // Reset explicitly: a var declared inside the loop body was observed NOT to be re-zeroed per
    // iteration (Dawn + lavapipe), although WGSL requires it.
    for (var u = 0u; u < BQ; u++) { s[u] = 0.0; dp[u] = 0.0; }
    for (var d = 0u; d < D4; d++) {
      let kd = k[ko + d];
      let vd = v[ko + d];
      for (var u = 0u; u < BQ; u++) {
        let o = (qb + min(ib + u, p.Tq - 1u)) * D4 + d;
        s[u] += dot(kd, q[o]);
        dp[u] += dot(vd, dOut[o]);
      }
    }
    var pw: array<f32, BQ>;
    var ds: array<f32, BQ>;
    for (var u = 0u; u < BQ; u++) {
      let i = ib + u;
      let st = stats[qb + min(i, p.Tq - 1u)];
      let vis = keyOk && i < p.Tq && (p.causal == 0u || i >= j);
      let li = select(0.0, st.x, vis);
      pw[u] = select(0.0, exp(s[u] * p.scale - li), vis);
      ds[u] = pw[u] * (dp[u] - st.y) * p.scale;
    }
    for (var d = 0u; d < D4; d++) {
      var gk = vec4f(0.0);
      var gv = vec4f(0.0);
      if (ib != i0) { gk = dk[ko + d]; gv = dv[ko + d]; }
      for (var u = 0u; u < BQ; u++) {
        let o = (qb + min(ib + u, p.Tq - 1u)) * D4 + d;
        gv += pw[u] * dOut[o];
        gk += ds[u] * q[o];
      }
      if (live) { dk[ko + d] = gk; dv[ko + d] = gv; }
    }
  }
  if (i0 >= p.Tq && live) {   // no query block at all (causal keys past the last query)
    for (var d = 0u; d < D4; d++) { dk[ko + d] = vec4f(0.0); dv[ko + d] = vec4f(0.0); }
  }
}
