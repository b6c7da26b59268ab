// Conv2d forward as implicit GEMM with workgroup-memory tiling (the classic GPU form): x [N,C,H,W] * w [K,C/g,R,S] -> y [N,K,P,Q].
// Per group g: y[k, col] = sum_kk W[k, kk] * im2col(x)[kk, col], kk = (c, r, s), col = (n, p, q). A 16×16 workgroup
// computes a 64-channel × 64-column tile: each step stages a 64×16 slice of W and a 16×64 slice of im2col(x)
// (gathered on the fly, zero outside the padded input) in workgroup memory; each invocation accumulates 4×4
// outputs (channels ty + 16i, columns tx + 16j: adjacent invocations touch adjacent pixels).
// Epilogue: y = act(acc + bias[k]) + res[n, k, p, q].

struct Params {
  N: u32, C: u32, H: u32, W: u32,
  K: u32, P: u32, Q: u32, R: u32,
  S: u32, sh: u32, sw: u32, ph: u32,
  pw: u32, dh: u32, dw: u32, Cg: u32,
  Kg: u32, kBlocks: u32, // kBlocks = ceil(Kg / 64)
  bk: u32,               // = BK, read at run time so the inner loop is not unrolled (16× less code for CPU compilers)
  flags: u32,            // epilogue: 1 = add bias, 2 = relu, 4 = add residual
}

const BM = 64u;  // channels per tile
const BN = 64u;  // columns per tile
const BK = 16u;  // reduction slice

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> res: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

var<workgroup> As: array<vec4<f32>, 256>;  // As[kk*16 + m/4][m%4] = W[k0 + m, kk0 + kk]
var<workgroup> Bs: array<vec4<f32>, 256>;  // Bs[kk*16 + nn/4][nn%4] = im2col[kk0 + kk, col0 + nn]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u,
        @builtin(local_invocation_index) t: u32) {
  let cb = wid.x + wid.z * nwg.x;  // column block (the grid folds blocks over x and z)
  let PQ = p.P * p.Q;
  let NPQ = p.N * PQ;
  let HW = p.H * p.W;
  let RS = p.R * p.S;
  let CRS = p.Cg * RS;
  let g = wid.y / p.kBlocks;
  let kIn0 = (wid.y % p.kBlocks) * BM;  // first channel of the tile, within the group
  let col0 = cb * BN;

  // The im2col column this invocation stages: nn = t % 64 (fixed), rows kk = t / 64 + 4i.
  let nnL = t % BN;
  let colL = col0 + nnL;
  let colLive = colL < NPQ;
  let nL = min(colL / PQ, p.N - 1u);
  let pqL = colL % PQ;
  let hL = i32((pqL / p.Q) * p.sh) - i32(p.ph);
  let wL = i32((pqL % p.Q) * p.sw) - i32(p.pw);
  let xImg = (nL * p.C + g * p.Cg) * HW;

  var acc: array<vec4<f32>, 4>;  // acc[i][j]: channel 4ty + i, column 4tx + j
  for (var kk0 = 0u; kk0 < CRS; kk0 += BK) {
    // Stage W: element e = t + 256i -> kk = e % 16, m = e / 16 (adjacent invocations read adjacent weights).
    for (var i = 0u; i < 4u; i++) {
      let e = t + 256u * i;
      let kk = e % BK;
      let m = e / BK;
      let kIn = kIn0 + m;
      var v = 0.0;
      if (kIn < p.Kg && kk0 + kk < CRS) { v = w[(g * p.Kg + kIn) * CRS + kk0 + kk]; }
      As[kk * 16u + m / 4u][m % 4u] = v;
    }
    // Stage im2col(x): rows kk = t / 64 + 4i of column nnL.
    for (var i = 0u; i < 4u; i++) {
      let kk = t / BN + 4u * i;
      let crs = kk0 + kk;
      var v = 0.0;
      if (colLive && crs < CRS) {
        let c = crs / RS;
        let rs = crs - c * RS;
        let r = rs / p.S;
        let s = rs - r * p.S;
        let hh = hL + i32(r * p.dh);
        let ww = wL + i32(s * p.dw);
        if (u32(hh) < p.H && u32(ww) < p.W) { v = x[xImg + c * HW + u32(hh) * p.W + u32(ww)]; }
      }
      Bs[kk * 16u + nnL / 4u][nnL % 4u] = v;
    }
    workgroupBarrier();
    let kEnd = min(p.bk, CRS - kk0);
    for (var kk = 0u; kk < kEnd; kk++) {
      let a = As[kk * 16u + lid.y];
      let b = Bs[kk * 16u + lid.x];
      acc[0] = fma(vec4(a.x), b, acc[0]);
      acc[1] = fma(vec4(a.y), b, acc[1]);
      acc[2] = fma(vec4(a.z), b, acc[2]);
      acc[3] = fma(vec4(a.w), b, acc[3]);
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < 4u; i++) {
    let kIn = kIn0 + 4u * lid.y + i;
    if (kIn >= p.Kg) { continue; }
    let k = g * p.Kg + kIn;
    var bv = 0.0;
    if ((p.flags & 1u) != 0u) { bv = bias[k]; }
    for (var j = 0u; j < 4u; j++) {
      let col = col0 + 4u * lid.x + j;
      if (col < NPQ) {
        let n = col / PQ;
        let yi = (n * p.K + k) * PQ + col % PQ;
        var v = acc[i][j] + bv;
        if ((p.flags & 2u) != 0u) { v = max(v, 0.0); }
        if ((p.flags & 4u) != 0u) { v += res[yi]; }
        y[yi] = v;
      }
    }
  }
}
