// Max-pool backward, second pass (gather, no atomics): dx[n,c,h,w] = sum of dy[n,c,p,q] over the windows (p, q)
// that contain (h, w) and whose argmax idx[n,c,p,q] (from pool2d_bwd_argmax.wgsl) is h*W + w.
// dy, idx [N,C,P,Q] -> dx [N,C,H,W], 1-D over N*C*H*W; windows are visited in a fixed order (deterministic).
struct Params {
  n: u32, H: u32, W: u32, P: u32, Q: u32, R: u32, S: u32,
  sh: u32, sw: u32, ph: u32, pw: u32, dh: u32, dw: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  let HW = p.H * p.W;
  let plane = i / HW;
  let at = i - plane * HW;
  let h = at / p.W;
  let w = at - h * p.W;
  let yb = plane * p.P * p.Q;
  var acc = 0.0;
  for (var r = 0u; r < p.R; r++) {
    let th = h + p.ph;
    if (th < r * p.dh) { break; }
    let t = th - r * p.dh; // = op * sh for the window whose tap r lands on row h
    let op = t / p.sh;
    if (op * p.sh != t || op >= p.P) { continue; }
    for (var s = 0u; s < p.S; s++) {
      let tw = w + p.pw;
      if (tw < s * p.dw) { break; }
      let u = tw - s * p.dw;
      let oq = u / p.sw;
      if (oq * p.sw != u || oq >= p.Q) { continue; }
      let j = yb + op * p.Q + oq;
      if (idx[j] == i32(at)) { acc += dy[j]; }
    }
  }
  dx[i] = acc;
}
