// Conv2d forward, implicit GEMM with input reuse along output rows, weights shared through subgroup broadcasts.
// x [N,C,H,W] * w [K,C/g,R,S] -> y [N,K,P,Q]. An invocation owns TM channels × TN adjacent outputs of one row
// (n, p, q0..q0+TN-1). For each (c, r) it loads the L = (TN-1)·SW + (S-1)·DW + 1 input values those outputs
// touch once and reuses them for every s (a 3×3 stride-1 kernel with TN = 4 loads 6 values instead of 12).
// Kernel width S, stride SW and dilation DW along w are override constants so the s/j loops unroll. Each lane
// loads one weight per block of 8 channels and subgroupBroadcast shares it (subgroups of >= 8 invocations).
// Epilogue: y = act(acc + bias[k]) + res[n, k, p, q].
enable subgroups;

struct Params {
  N: u32, C: u32, H: u32, W: u32,
  K: u32, P: u32, Q: u32, R: u32,
  sh: u32, ph: u32, pw: u32, dh: u32,
  Cg: u32, Kg: u32, kBlocks: u32, QB: u32, // kBlocks = ceil(Kg / TM), QB = ceil(Q / TN)
  tm: u32,               // = TM, read at run time so the epilogue stays a loop (small code, fast compiles)
  flags: u32,                               // epilogue: 1 = add bias, 2 = relu, 4 = add residual
}

override TM: u32 = 16;  // output channels per invocation: 8, 16, 24 or 32
override TN: u32 = 4;   // adjacent outputs along q per invocation: 1..8
override WG: u32 = 16;  // invocations per workgroup
override S: u32 = 3;    // kernel width
override SW: u32 = 1;   // stride along w
override DW: u32 = 1;   // dilation along w
const LMAX = 32u;       // the wrapper guarantees L <= LMAX
const TMAX_TN = 256;
const NONE = 0xffffffffu;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> res: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u,
        @builtin(subgroup_invocation_id) lane: u32) {
  let cb = wid.x + wid.z * nwg.x;  // column block (the grid folds blocks over x and z)
  let L = (TN - 1u) * SW + (S - 1u) * DW + 1u;
  let HW = p.H * p.W;
  let RS = p.R * S;
  let CRS = p.Cg * RS;
  let g = wid.y / p.kBlocks;
  let kIn = (wid.y % p.kBlocks) * TM;
  let k0 = g * p.Kg + kIn;
  let kLast = g * p.Kg + p.Kg - 1u;

  // This invocation's row segment: image n, output row op, outputs oq0 .. oq0 + TN - 1.
  let col = cb * WG + lid.x;
  let live = col < p.N * p.P * p.QB;
  let n = min(col / (p.P * p.QB), p.N - 1u);
  let rem = col % (p.P * p.QB);
  let op = rem / p.QB;
  let oq0 = (rem % p.QB) * TN;
  let h0 = select(-0x3fffffff, i32(op * p.sh) - i32(p.ph), live); // dead invocations read nothing
  let wl = i32(oq0 * SW) - i32(p.pw);                              // leftmost input column touched
  let xImg = (n * p.C + g * p.Cg) * HW;
  var colOk: array<bool, LMAX>;
  for (var l = 0u; l < L; l++) {
    colOk[l] = u32(wl + i32(l)) < p.W;
  }
  var wrow: array<u32, 4>;
  for (var b = 0u; b < TM / 8u; b++) {
    wrow[b] = min(k0 + b * 8u + (lane & 7u), kLast) * CRS;
  }

  var acc: array<array<f32, 8>, 32>;
  for (var r = 0u; r < p.R; r++) {
    let hh = h0 + i32(r * p.dh);
    let rowOk = u32(hh) < p.H;
    let xRow = i32(xImg) + hh * i32(p.W) + wl;
    var idx: array<u32, LMAX>;
    var ok: array<bool, LMAX>;
    for (var l = 0u; l < L; l++) {
      ok[l] = rowOk && colOk[l];
      idx[l] = select(0u, u32(xRow + i32(l)), ok[l]);
    }
    var wo = r * S;
    for (var c = 0u; c < p.Cg; c++) {
      var xs: array<f32, LMAX>;
      for (var l = 0u; l < L; l++) {
        xs[l] = select(0.0, x[idx[l]], ok[l]);
        idx[l] += HW;
      }
      for (var s = 0u; s < S; s++) {
        for (var b = 0u; b < TM / 8u; b++) {
          let wv = w[wrow[b] + wo + s];
          let v0 = subgroupBroadcast(wv, 0u);
          let v1 = subgroupBroadcast(wv, 1u);
          let v2 = subgroupBroadcast(wv, 2u);
          let v3 = subgroupBroadcast(wv, 3u);
          let v4 = subgroupBroadcast(wv, 4u);
          let v5 = subgroupBroadcast(wv, 5u);
          let v6 = subgroupBroadcast(wv, 6u);
          let v7 = subgroupBroadcast(wv, 7u);
          for (var j = 0u; j < TN; j++) {
            let xj = xs[j * SW + s * DW];
            acc[8u * b][j] = fma(v0, xj, acc[8u * b][j]);
            acc[8u * b + 1u][j] = fma(v1, xj, acc[8u * b + 1u][j]);
            acc[8u * b + 2u][j] = fma(v2, xj, acc[8u * b + 2u][j]);
            acc[8u * b + 3u][j] = fma(v3, xj, acc[8u * b + 3u][j]);
            acc[8u * b + 4u][j] = fma(v4, xj, acc[8u * b + 4u][j]);
            acc[8u * b + 5u][j] = fma(v5, xj, acc[8u * b + 5u][j]);
            acc[8u * b + 6u][j] = fma(v6, xj, acc[8u * b + 6u][j]);
            acc[8u * b + 7u][j] = fma(v7, xj, acc[8u * b + 7u][j]);
          }
        }
      }
      wo += RS;
    }
  }

  // Epilogue as a loop with a runtime trip count (small code: the unrolled form compiles slowly on CPU drivers).
  var flat: array<f32, TMAX_TN>;
  for (var i = 0u; i < TM; i++) {
    for (var j = 0u; j < TN; j++) { flat[i * TN + j] = acc[i][j]; }
  }
  let PQ = p.P * p.Q;
  let yPix = n * p.K * PQ + op * p.Q + oq0;
  let cols = select(0u, min(TN, p.Q - oq0), live);
  let rows = min(p.tm, p.Kg - kIn);
  for (var i = 0u; i < rows; i++) {
    let k = k0 + i;
    var bv = 0.0;
    if ((p.flags & 1u) != 0u) { bv = bias[k]; }
    for (var j = 0u; j < cols; j++) {
      let yi = yPix + k * PQ + j;
      var v = flat[i * TN + j] + bv;
      if ((p.flags & 2u) != 0u) { v = max(v, 0.0); }
      if ((p.flags & 4u) != 0u) { v += res[yi]; }
      y[yi] = v;
    }
  }
}
