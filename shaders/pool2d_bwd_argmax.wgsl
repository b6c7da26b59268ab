// Max-pool backward, first pass: recompute each window's argmax from x [N,C,H,W] -> idx [N,C,P,Q] (i32, h*W + w
// within the plane). Taps are scanned row-major; a later tap wins only if strictly greater (first max wins) or NaN,
// which is PyTorch's rule. Padding taps are skipped. 1-D over N*C*P*Q.
struct Params {
  n: u32, H: u32, W: u32, P: u32, Q: u32, R: u32, S: u32,
  sh: u32, sw: u32, ph: u32, pw: u32, dh: u32, dw: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> idx: array<i32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  let PQ = p.P * p.Q;
  let plane = i / PQ;
  let pq = i - plane * PQ;
  let op = pq / p.Q;
  let oq = pq - op * p.Q;
  let xb = plane * p.H * p.W;
  let h0 = i32(op * p.sh) - i32(p.ph);
  let w0 = i32(oq * p.sw) - i32(p.pw);
  var best = 0.0;
  var bi = -1;
  for (var r = 0u; r < p.R; r++) {
    let h = h0 + i32(r * p.dh);
    if (u32(h) >= p.H) { continue; }
    for (var s = 0u; s < p.S; s++) {
      let w = w0 + i32(s * p.dw);
      if (u32(w) >= p.W) { continue; }
      let at = u32(h) * p.W + u32(w);
      let v = x[xb + at];
      if (bi < 0 || v > best || v != v) {
        best = v;
        bi = i32(at);
      }
    }
  }
  idx[i] = bi;
}
