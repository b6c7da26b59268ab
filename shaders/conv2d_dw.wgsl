// Depthwise conv2d forward (one input channel per group: C/groups = 1): x [N,C,H,W] * w [K,1,R,S] -> y [N,K,P,Q].
// Output channel k reads input channel k / (K/groups) (groups = C = K is the usual depthwise; K = m·C gives a
// channel multiplier m). An invocation owns TN adjacent outputs of one row of one channel and loads the
// L = (TN-1)·SW + (S-1)·DW + 1 inputs they touch once per kernel row, reusing them for every s. S, SW, DW are
// override constants so the s/j loops unroll. No workgroup memory, no subgroups.
// Epilogue: y = act(acc + bias[k]) + res[n, k, p, q].

struct Params {
  N: u32, C: u32, H: u32, W: u32,
  K: u32, P: u32, Q: u32, R: u32,
  sh: u32, ph: u32, pw: u32, dh: u32,
  Kg: u32, QB: u32, // QB = ceil(Q / TN)
  flags: u32,       // epilogue: 1 = add bias, 2 = relu, 4 = add residual
}

override TN: u32 = 8;   // adjacent outputs along q per invocation: 1..8
override WG: u32 = 16;  // invocations per workgroup
override S: u32 = 3;    // kernel width
override SW: u32 = 1;   // stride along w
override DW: u32 = 1;   // dilation along w
const LMAX = 32u;       // the wrapper guarantees L <= LMAX

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> res: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let cb = wid.x + wid.z * nwg.x;  // column block (the grid folds blocks over x and z)
  let L = (TN - 1u) * SW + (S - 1u) * DW + 1u;
  let k = wid.y;
  let ci = k / p.Kg;  // input channel
  let col = cb * WG + lid.x;
  let live = col < p.N * p.P * p.QB;
  let n = min(col / (p.P * p.QB), p.N - 1u);
  let rem = col % (p.P * p.QB);
  let op = rem / p.QB;
  let oq0 = (rem % p.QB) * TN;
  let h0 = select(-0x3fffffff, i32(op * p.sh) - i32(p.ph), live); // dead invocations read nothing
  let wl = i32(oq0 * SW) - i32(p.pw);
  let xImg = i32((n * p.C + ci) * p.H * p.W);
  var colOk: array<bool, LMAX>;
  for (var l = 0u; l < L; l++) {
    colOk[l] = u32(wl + i32(l)) < p.W;
  }

  var acc: array<f32, 8>;
  for (var r = 0u; r < p.R; r++) {
    let hh = h0 + i32(r * p.dh);
    let rowOk = u32(hh) < p.H;
    let xRow = xImg + hh * i32(p.W) + wl;
    var xs: array<f32, LMAX>;
    for (var l = 0u; l < L; l++) {
      let ok = rowOk && colOk[l];
      xs[l] = select(0.0, x[select(0u, u32(xRow + i32(l)), ok)], ok);
    }
    let wo = (k * p.R + r) * S;
    for (var s = 0u; s < S; s++) {
      let wv = w[wo + s];
      for (var j = 0u; j < TN; j++) {
        acc[j] = fma(wv, xs[j * SW + s * DW], acc[j]);
      }
    }
  }

  if (!live) { return; }
  var bv = 0.0;
  if ((p.flags & 1u) != 0u) { bv = bias[k]; }
  let yRow = ((n * p.K + k) * p.P + op) * p.Q + oq0;
  let cols = min(TN, p.Q - oq0);
  for (var j = 0u; j < TN; j++) {
    if (j < cols) {
      let yi = yRow + j;
      var v = acc[j] + bv;
      if ((p.flags & 2u) != 0u) { v = max(v, 0.0); }
      if ((p.flags & 4u) != 0u) { v += res[yi]; }
      y[yi] = v;
    }
  }
}
