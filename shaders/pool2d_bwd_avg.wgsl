// Average-pool backward (gather, no atomics): dx[n,c,h,w] = sum over windows (p, q) containing (h, w) of
// dy[n,c,p,q] / divisor(p, q). Divisor (PyTorch's rule, generalised to dilation): taps of the window inside the
// padded input when COUNT_PAD, else taps inside the input. dy [N,C,P,Q] -> dx [N,C,H,W], 1-D over N*C*H*W.
struct Params {
  n: u32, H: u32, W: u32, P: u32, Q: u32, R: u32, S: u32,
  sh: u32, sw: u32, ph: u32, pw: u32, dh: u32, dw: u32,
}
override COUNT_PAD: bool = true;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

// Taps of a window starting at padded coordinate o (= out*stride) that count, along one axis.
fn taps(o: u32, k: u32, d: u32, pad: u32, size: u32) -> u32 {
  var c = 0u;
  for (var r = 0u; r < k; r++) {
    let t = o + r * d; // padded coordinate
    if (COUNT_PAD) {
      c += select(0u, 1u, t < size + 2u * pad);
    } else {
      c += select(0u, 1u, t >= pad && t < size + pad);
    }
  }
  return c;
}

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
    let t = th - r * p.dh;
    let op = t / p.sh;
    if (op * p.sh != t || op >= p.P) { continue; }
    let th_n = taps(t, p.R, p.dh, p.ph, p.H);
    for (var s = 0u; s < p.S; s++) {
      let tw = w + p.pw;
      if (tw < s * p.dw) { break; }
      let u = tw - s * p.dw;
      let oq = u / p.sw;
      if (oq * p.sw != u || oq >= p.Q) { continue; }
      let div = f32(th_n * taps(u, p.S, p.dw, p.pw, p.W));
      acc += dy[yb + op * p.Q + oq] / div;
    }
  }
  dx[i] = acc;
}
