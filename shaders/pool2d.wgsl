// Max / average 2-D pooling on NCHW x [N*C planes, H, W] -> y [N*C, OH, OW], PyTorch semantics:
// max ignores padding (as -inf) and propagates NaN; avg divides by the window clipped to the padded
// edge (INCLUDE_PAD) or by the in-bounds count. One invocation per output; 1-D grid split over x/y.
struct Params {
  total: u32, H: u32, W: u32, OH: u32, OW: u32,
  KH: u32, KW: u32, SH: u32, SW: u32, PH: u32, PW: u32, DH: u32, DW: u32,
  ninf: f32,   // -infinity (a runtime value: WGSL constants cannot be infinite)
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

override WG: u32 = 256;
override MAX: bool = true;         // false: average
override INCLUDE_PAD: bool = true; // average only

fn isNan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.total) { return; }
  let ow = i % p.OW;
  let t = i / p.OW;
  let oh = t % p.OH;
  let plane = t / p.OH;
  let H = i32(p.H);
  let W = i32(p.W);
  let h0 = i32(oh * p.SH) - i32(p.PH);
  let w0 = i32(ow * p.SW) - i32(p.PW);
  let base = plane * p.H * p.W;
  var acc = select(0.0, p.ninf, MAX);
  var count = 0u;
  for (var a = 0u; a < p.KH; a++) {
    let r = h0 + i32(a * p.DH);
    if (r < 0 || r >= H) { continue; }
    let row = base + u32(r) * p.W;
    for (var b = 0u; b < p.KW; b++) {
      let q = w0 + i32(b * p.DW);
      if (q < 0 || q >= W) { continue; }
      let v = x[row + u32(q)];
      if (MAX) {
        if (v > acc || isNan(v)) { acc = v; }
      } else {
        acc += v;
        count++;
      }
    }
  }
  if (!MAX) {
    var div = f32(count);
    if (INCLUDE_PAD) {
      let h1 = min(h0 + i32(p.KH), H + i32(p.PH));
      let w1 = min(w0 + i32(p.KW), W + i32(p.PW));
      div = f32((h1 - h0) * (w1 - w0));
    }
    acc = select(acc / div, 0.0, count == 0u);
  }
  y[i] = acc;
}
