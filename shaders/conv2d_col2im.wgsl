// Conv2d backward data, second half of the GEMM path: col2im gather (no atomics). dcol [N, C*R*S, P*Q] = Wᵀ·dY per
// image; dx[n, c, h, x] = sum over taps (r, s) with h = p*sh - ph + r*dh, x = q*sw - pw + s*dw, 0 <= p < P,
// 0 <= q < Q of dcol[n, (c*R + r)*S + s, p*Q + q]. One invocation per dx element (index = gid.x + gid.y * nwg.x * 256).
// dcol may hold a chunk of the batch: it covers images n0 .. n0 + total/(C*H*W) - 1, and dx is written at base = n0*C*H*W.
struct Params {
  C: u32, H: u32, W: u32, P: u32,
  Q: u32, R: u32, S: u32, sh: u32,
  sw: u32, ph: u32, pw: u32, dh: u32,
  dw: u32, total: u32, base: u32, // total = images in this chunk * C*H*W; base = first dx element of the chunk
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dcol: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let idx = gid.x + gid.y * nwg.x * 256u;
  if (idx >= p.total) { return; }
  let x = idx % p.W;
  let t0 = idx / p.W;
  let h = t0 % p.H;
  let nc = t0 / p.H; // n*C + c
  let PQ = p.P * p.Q;
  // row (n*C + c)*R*S of dcol (as [N*C*R*S, P*Q]) starts channel c of image n
  let rowBase = nc * p.R * p.S;
  var acc = 0.0;
  for (var r = 0u; r < p.R; r++) {
    let th = i32(h + p.ph) - i32(r * p.dh);
    if (th < 0 || th % i32(p.sh) != 0) { continue; }
    let op = u32(th) / p.sh;
    if (op >= p.P) { continue; }
    for (var s = 0u; s < p.S; s++) {
      let tw = i32(x + p.pw) - i32(s * p.dw);
      if (tw < 0 || tw % i32(p.sw) != 0) { continue; }
      let oq = u32(tw) / p.sw;
      if (oq >= p.Q) { continue; }
      acc += dcol[(rowBase + r * p.S + s) * PQ + op * p.Q + oq];
    }
  }
  dx[p.base + idx] = acc;
}
