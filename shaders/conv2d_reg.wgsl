// Conv2d forward, implicit GEMM, register-blocked, no workgroup memory, no subgroups (portable fallback).
// x [N,C,H,W] * w [K,C/g,R,S] -> y [N,K,P,Q]. GEMM per group g: y[k, col] = sum_{c,r,s} w[k,c,r,s] * im2col(x)[(c,r,s), col],
// col = (n, p, q) flattened, the im2col gather done on the fly. An invocation owns TM channels × TN columns
// (columns strided by WG, so adjacent invocations read adjacent pq); weight loads are the same address for all
// invocations of a workgroup. Epilogue: y = act(acc + bias[k]) + res[n, k, p, q].

struct Params {
  N: u32, C: u32, H: u32, W: u32,
  K: u32, P: u32, Q: u32, R: u32,
  S: u32, sh: u32, sw: u32, ph: u32,
  pw: u32, dh: u32, dw: u32, Cg: u32,
  Kg: u32, kBlocks: u32, // kBlocks = ceil(Kg / TM): channel blocks per group
  tm: u32,               // = TM, read at run time so the epilogue stays a loop (small code, fast compiles)
  flags: u32,            // epilogue: 1 = add bias, 2 = relu, 4 = add residual
}

override TM: u32 = 4;   // output channels per invocation: 1..8
override TN: u32 = 2;   // output columns per invocation: 1..8
override WG: u32 = 64;  // invocations per workgroup (along columns)

const NONE = 0xffffffffu;
const TMAX_TN = 64;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> res: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let cb = wid.x + wid.z * nwg.x;  // column block (the grid folds blocks over x and z)
  let PQ = p.P * p.Q;
  let NPQ = p.N * PQ;
  let HW = p.H * p.W;
  let RS = p.R * p.S;
  let CRS = p.Cg * RS;
  let g = wid.y / p.kBlocks;
  let kIn = (wid.y % p.kBlocks) * TM;  // first channel of this block, within the group
  let k0 = g * p.Kg + kIn;
  let kLast = g * p.Kg + p.Kg - 1u;

  // This invocation's columns: output offset (NONE past the end), image offset and top-left input coordinate.
  var ybase: array<u32, 8>;
  var xbase: array<u32, 8>;
  var h0: array<i32, 8>;
  var w0: array<i32, 8>;
  let col0 = cb * WG * TN + lid.x;
  for (var j = 0u; j < TN; j++) {
    let col = col0 + j * WG;
    let n = col / PQ;
    let pq = col - n * PQ;
    let op = pq / p.Q;
    let oq = pq - op * p.Q;
    ybase[j] = select(NONE, n * p.K * PQ + pq, col < NPQ);
    xbase[j] = (min(n, p.N - 1u) * p.C + g * p.Cg) * HW;
    h0[j] = select(-0x3fffffff, i32(op * p.sh) - i32(p.ph), col < NPQ); // past-the-end columns read nothing
    w0[j] = i32(oq * p.sw) - i32(p.pw);
  }
  // Weight rows (rows past the group repeat its last; their results are not stored).
  var wrow: array<u32, 8>;
  for (var i = 0u; i < TM; i++) {
    wrow[i] = min(k0 + i, kLast) * CRS;
  }

  var acc: array<array<f32, 8>, 8>;
  for (var r = 0u; r < p.R; r++) {
    for (var s = 0u; s < p.S; s++) {
      var off: array<u32, 8>;
      var ok: array<bool, 8>;
      for (var j = 0u; j < TN; j++) {
        let hh = h0[j] + i32(r * p.dh);
        let ww = w0[j] + i32(s * p.dw);
        ok[j] = u32(hh) < p.H && u32(ww) < p.W;
        off[j] = select(0u, xbase[j] + u32(hh) * p.W + u32(ww), ok[j]);
      }
      var wo = r * p.S + s;
      for (var c = 0u; c < p.Cg; c++) {
        var xv: array<f32, 8>;
        for (var j = 0u; j < TN; j++) {
          xv[j] = select(0.0, x[off[j]], ok[j]);
          off[j] += HW;
        }
        for (var i = 0u; i < TM; i++) {
          let wv = w[wrow[i] + wo];
          for (var j = 0u; j < TN; j++) {
            acc[i][j] = fma(wv, xv[j], acc[i][j]);
          }
        }
        wo += RS;
      }
    }
  }

  // Epilogue as a loop with a runtime trip count (small code: the unrolled form compiles slowly on CPU drivers).
  var flat: array<f32, TMAX_TN>;
  for (var i = 0u; i < TM; i++) {
    for (var j = 0u; j < TN; j++) { flat[i * TN + j] = acc[i][j]; }
  }
  let rows = min(p.tm, p.Kg - kIn);
  for (var i = 0u; i < rows; i++) {
    let k = k0 + i;
    var bv = 0.0;
    if ((p.flags & 1u) != 0u) { bv = bias[k]; }
    for (var j = 0u; j < TN; j++) {
      if (ybase[j] != NONE) {
        let yi = ybase[j] + k * PQ;
        var v = flat[i * TN + j] + bv;
        if ((p.flags & 2u) != 0u) { v = max(v, 0.0); }
        if ((p.flags & 4u) != 0u) { v += res[yi]; }
        y[yi] = v;
      }
    }
  }
}
