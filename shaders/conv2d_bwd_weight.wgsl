// Conv2d backward weight as an implicit GEMM with split reduction: x [N,C,H,W], dy [N,K,P,Q] -> dw [K,C/g,R,S]
// (or, when split > 1, partial sums part [split, K, C/g, R, S] that conv2d_bwd_weight_reduce.wgsl adds up in order).
// dw[k, c, r, s] = sum over (n, p, q) of dy[n, k, p, q] * x[n, g*Cg + c, p*sh - ph + r*dh, q*sw - pw + s*dw].
// The reduction over (n, p, q) is cut into `split` contiguous chunks of rows (n, p), one per workgroup z. One invocation computes
// TM output channels × TN columns (c, r, s) of one group; columns are strided by nCB so neighbouring invocations
// take neighbouring columns. All invocations of a workgroup walk the same (n, p, q) sequence, so for groups = 1 the
// dy loads are uniform. POINTWISE (1×1, stride 1, no padding) skips the bounds tests. No workgroup memory, no atomics.
struct Params {
  C: u32, H: u32, W: u32, K: u32,
  P: u32, Q: u32, R: u32, S: u32,
  sh: u32, sw: u32, ph: u32, pw: u32,
  dh: u32, dw: u32, Cg: u32, Kg: u32,
  nCB: u32,     // column blocks per group: ceil(Cg*R*S / TN)
  groups: u32,
  L: u32,       // N*P: rows of dy to reduce over
  chunk: u32,   // rows per split
}

override TM: u32 = 4;  // output channels per invocation (1..8)
override TN: u32 = 4;  // columns per invocation (1..8)
override WG: u32 = 64;
override POINTWISE: bool = false;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// workgroups: x = ceil(groups * nCB / WG), y = ceil(Kg / TM), z = split
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let gi = wid.x * WG + lid.x;
  if (gi >= p.groups * p.nCB) { return; }
  let g = gi / p.nCB;
  let cb = gi - g * p.nCB;
  let RS = p.R * p.S;
  let CRS = p.Cg * RS;
  let HW = p.H * p.W;
  let PQ = p.P * p.Q;

  // Columns (c, r, s) of this invocation: x-plane offset and tap offsets; missing columns never hit the input.
  var xo: array<u32, 8>;
  var hoff: array<i32, 8>;
  var woff: array<i32, 8>;
  for (var j = 0u; j < TN; j++) {
    let col = cb + j * p.nCB;
    let c = col / RS;
    let rs = col - c * RS;
    let r = rs / p.S;
    let s = rs - r * p.S;
    xo[j] = select(0u, (g * p.Cg + c) * HW, col < CRS);
    hoff[j] = select(-1000000, i32(r * p.dh) - i32(p.ph), col < CRS);
    woff[j] = i32(s * p.dw) - i32(p.pw);
  }
  // Output channels of this invocation (past the group's last channel repeat it; not stored).
  let kIn = wid.y * TM;
  var ko: array<u32, 8>;
  for (var i = 0u; i < TM; i++) {
    ko[i] = (g * p.Kg + min(kIn + i, p.Kg - 1u)) * PQ;
  }

  // This split's rows (n, p) of dy: [t0, t1) out of L = N*P; each row runs over q.
  let t0 = wid.z * p.chunk;
  let t1 = min(t0 + p.chunk, p.L);
  var acc: array<array<f32, 8>, 8>;
  if (t0 < t1) {
    var n = t0 / p.P;
    var op = t0 - n * p.P;
    let KPQ = p.K * PQ;
    let CHW = p.C * HW;
    for (var t = t0; t < t1; t++) {
      let yb = n * KPQ + op * p.Q;
      let xb = n * CHW;
      // Per column: start of its input row and whether the row exists.
      var xr: array<u32, 8>;
      var hv: array<bool, 8>;
      let hb = i32(op * p.sh);
      for (var j = 0u; j < TN; j++) {
        let hh = hb + hoff[j];
        hv[j] = u32(hh) < p.H;
        xr[j] = select(0u, xb + xo[j] + u32(hh) * p.W, hv[j]);
      }
      for (var oq = 0u; oq < p.Q; oq++) {
        var xv: array<f32, 8>;
        if (POINTWISE) {
          for (var j = 0u; j < TN; j++) {
            xv[j] = x[xr[j] + oq];
          }
        } else {
          let wb = i32(oq * p.sw);
          for (var j = 0u; j < TN; j++) {
            let ww = wb + woff[j];
            let valid = hv[j] && u32(ww) < p.W;
            xv[j] = select(0.0, x[select(0u, xr[j] + u32(ww), valid)], valid);
          }
        }
        for (var i = 0u; i < TM; i++) {
          let d = dy[yb + ko[i] + oq];
          for (var j = 0u; j < TN; j++) {
            acc[i][j] = fma(d, xv[j], acc[i][j]);
          }
        }
      }
      op++;
      if (op == p.P) {
        op = 0u;
        n++;
      }
    }
  }

  let total = p.K * CRS;
  let ob = wid.z * total;
  for (var i = 0u; i < TM; i++) {
    if (kIn + i >= p.Kg) { break; }
    let row = ob + (g * p.Kg + kIn + i) * CRS;
    for (var j = 0u; j < TN; j++) {
      let col = cb + j * p.nCB;
      if (col < CRS) {
        out[row + col] = acc[i][j];
      }
    }
  }
}
