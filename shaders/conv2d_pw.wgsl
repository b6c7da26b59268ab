// Conv2d forward for 1×1 kernels without padding: a plain GEMM over the channel dim, weights shared by subgroups.
// x [N,C,H,W] * w [K,C/g,1,1] -> y [N,K,P,Q]; per group g: y[k, col] = sum_c w[k, c] * x[n, g*Cg + c, p*sh, q*sw]
// with col = (n, p, q) flattened. An invocation owns TM channels × TN columns (columns strided by WG, so adjacent
// invocations read adjacent pixels). Each lane loads one weight per block of 8 channels and subgroupBroadcast
// shares it (subgroups of >= 8 invocations). Epilogue: y = act(acc + bias[k]) + res[n, k, p, q].
enable subgroups;

struct Params {
  N: u32, C: u32, H: u32, W: u32,
  K: u32, P: u32, Q: u32, sh: u32,
  sw: u32, Cg: u32, Kg: u32, kBlocks: u32, // kBlocks = ceil(Kg / TM)
  tm: u32,               // = TM, read at run time so the epilogue stays a loop (small code, fast compiles)
  flags: u32,                               // epilogue: 1 = add bias, 2 = relu, 4 = add residual
}

override TM: u32 = 32;  // output channels per invocation: 8, 16, 24 or 32
override TN: u32 = 4;   // output columns per invocation: 1..8
override WG: u32 = 16;  // invocations per workgroup (along columns)
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
  let PQ = p.P * p.Q;
  let NPQ = p.N * PQ;
  let HW = p.H * p.W;
  let g = wid.y / p.kBlocks;
  let kIn = (wid.y % p.kBlocks) * TM;
  let k0 = g * p.Kg + kIn;
  let kLast = g * p.Kg + p.Kg - 1u;

  var ybase: array<u32, 8>;  // n*K*PQ + pq, or NONE past the last column
  var off: array<u32, 8>;    // x offset of channel g*Cg of this column's pixel
  let col0 = cb * WG * TN + lid.x;
  for (var j = 0u; j < TN; j++) {
    let col = col0 + j * WG;
    let n = min(col / PQ, p.N - 1u);
    let pq = col % PQ;
    let op = pq / p.Q;
    let oq = pq - op * p.Q;
    ybase[j] = select(NONE, n * p.K * PQ + pq, col < NPQ);
    off[j] = (n * p.C + g * p.Cg) * HW + op * p.sh * p.W + oq * p.sw; // in bounds even past the end
  }
  var wo: array<u32, 4>;
  for (var b = 0u; b < TM / 8u; b++) {
    wo[b] = min(k0 + b * 8u + (lane & 7u), kLast) * p.Cg;
  }

  var acc: array<array<f32, 8>, 32>;
  for (var c = 0u; c < p.Cg; c++) {
    var xv: array<f32, 8>;
    for (var j = 0u; j < TN; j++) {
      xv[j] = x[off[j]];
      off[j] += HW;
    }
    for (var b = 0u; b < TM / 8u; b++) {
      let wv = w[wo[b] + c];
      let v0 = subgroupBroadcast(wv, 0u);
      let v1 = subgroupBroadcast(wv, 1u);
      let v2 = subgroupBroadcast(wv, 2u);
      let v3 = subgroupBroadcast(wv, 3u);
      let v4 = subgroupBroadcast(wv, 4u);
      let v5 = subgroupBroadcast(wv, 5u);
      let v6 = subgroupBroadcast(wv, 6u);
      let v7 = subgroupBroadcast(wv, 7u);
      for (var j = 0u; j < TN; j++) {
        let xj = xv[j];
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
