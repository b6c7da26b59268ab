// Conv2d backward data as an implicit GEMM (gather, no atomics): dy [N,K,P,Q] * w [K,C/g,R,S] -> dx [N,C,H,W].
// dx[n, c, h, x] = sum over k in c's group and taps (r, s) with h = p*sh - ph + r*dh, x = q*sw - pw + s*dw of
// dy[n, k, p, q] * w[k, c - g*Cg, r, s]. Input positions are split into sh×sw phases (h mod sh, x mod sw): within one
// phase the set of taps (r, s) that hit a whole output position is the same for every position, so the tap test is
// uniform across the workgroup and stride > 1 costs no wasted multiply-adds. One invocation computes TM input
// channels × TN positions of one phase (positions strided by WG so neighbouring invocations read neighbouring dy);
// the channel block comes from the workgroup, so weight loads are uniform. No workgroup memory.
struct Params {
  C: u32, H: u32, W: u32, K: u32,
  P: u32, Q: u32, R: u32, S: u32,
  sh: u32, sw: u32, ph: u32, pw: u32,
  dh: u32, dw: u32, Cg: u32, Kg: u32,
  cBlocks: u32, // ceil(Cg / TM): channel blocks per group
}

override TM: u32 = 4;  // input channels per invocation (1..8)
override TN: u32 = 4;  // input positions per invocation (1..8)
override WG: u32 = 64; // invocations per workgroup (along positions)

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

// workgroups: x = ceil(ceil(H/sh)*ceil(W/sw) / (WG*TN)), y = groups * cBlocks, z = N * sh * sw
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let nPh = p.sh * p.sw;
  let n = wid.z / nPh;
  let phase = wid.z - n * nPh;
  let a = phase / p.sw;            // h ≡ a (mod sh)
  let b = phase - a * p.sw;        // x ≡ b (mod sw)
  if (a >= p.H || b >= p.W) { return; }
  let Ha = (p.H - a + p.sh - 1u) / p.sh; // rows of this phase
  let Wa = (p.W - b + p.sw - 1u) / p.sw; // columns of this phase
  let cnt = Ha * Wa;

  let g = wid.y / p.cBlocks;
  let cIn = (wid.y - g * p.cBlocks) * TM; // first channel of this block within the group
  let cLast = p.Cg - 1u;
  let RS = p.R * p.S;
  let PQ = p.P * p.Q;
  let HW = p.H * p.W;

  // This invocation's positions (phase coordinates) and whether they exist.
  var ii: array<i32, 8>;
  var jj: array<i32, 8>;
  var pos: array<u32, 8>;
  let base = wid.x * WG * TN + lid.x;
  for (var j = 0u; j < TN; j++) {
    let t = base + j * WG;
    let r = t / Wa;
    ii[j] = select(-1000000, i32(r), t < cnt); // missing positions never match a row
    jj[j] = i32(t - r * Wa);
    pos[j] = t;
  }
  // Weight offsets of this invocation's channels (channels past the group repeat the last; not stored).
  var wc: array<u32, 8>;
  for (var i = 0u; i < TM; i++) {
    wc[i] = min(cIn + i, cLast) * RS;
  }
  let kStride = p.Cg * RS;           // w offset step per output channel
  let dyImg = (n * p.K + g * p.Kg) * PQ;
  let wGrp = g * p.Kg * kStride;

  var acc: array<array<f32, 8>, 8>;
  for (var r = 0u; r < p.R; r++) {
    let th = i32(a + p.ph) - i32(r * p.dh);
    if (th % i32(p.sh) != 0) { continue; } // uniform: no position of this phase uses tap row r
    let dp = th / i32(p.sh);
    for (var s = 0u; s < p.S; s++) {
      let tw = i32(b + p.pw) - i32(s * p.dw);
      if (tw % i32(p.sw) != 0) { continue; }
      let dq = tw / i32(p.sw);
      var off: array<u32, 8>;
      var ok: array<bool, 8>;
      for (var j = 0u; j < TN; j++) {
        let op = ii[j] + dp;
        let oq = jj[j] + dq;
        let valid = u32(op) < p.P && u32(oq) < p.Q;
        ok[j] = valid;
        off[j] = select(0u, dyImg + u32(op) * p.Q + u32(oq), valid);
      }
      var wo = wGrp + r * p.S + s;
      var yo = 0u;
      for (var k = 0u; k < p.Kg; k++) {
        var dv: array<f32, 8>;
        for (var j = 0u; j < TN; j++) {
          dv[j] = select(0.0, dy[off[j] + yo], ok[j]);
        }
        for (var i = 0u; i < TM; i++) {
          let wv = w[wo + wc[i]];
          for (var j = 0u; j < TN; j++) {
            acc[i][j] = fma(wv, dv[j], acc[i][j]);
          }
        }
        yo += PQ;
        wo += kStride;
      }
    }
  }

  for (var i = 0u; i < TM; i++) {
    if (cIn + i >= p.Cg) { break; }
    let plane = (n * p.C + g * p.Cg + cIn + i) * HW;
    for (var j = 0u; j < TN; j++) {
      if (pos[j] < cnt) {
        let h = a + u32(ii[j]) * p.sh;
        let x = b + u32(jj[j]) * p.sw;
        dx[plane + h * p.W + x] = acc[i][j];
      }
    }
  }
}
