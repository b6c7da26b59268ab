// Conv2d forward, GEMM lowering for few output columns: im2row gather (groups = 1). x [N, C, H, W] ->
// rows [N*P*Q, C*R*S] with rows[(n*P + p)*Q + q, (c*R + r)*S + s] = x[n, c, p*sh - ph + r*dh, q*sw - pw + s*dw]
// (0 outside the image). One invocation per rows element (index = gid.x + gid.y * nwg.x * 256).
struct Params {
  C: u32, H: u32, W: u32, P: u32,
  Q: u32, R: u32, S: u32, sh: u32,
  sw: u32, ph: u32, pw: u32, dh: u32,
  dw: u32, total: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> rows: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let idx = gid.x + gid.y * nwg.x * 256u;
  if (idx >= p.total) { return; }
  let RS = p.R * p.S;
  let CRS = p.C * RS;
  let col = idx / CRS;
  let crs = idx - col * CRS;
  let c = crs / RS;
  let rs = crs - c * RS;
  let r = rs / p.S;
  let s = rs - r * p.S;
  let PQ = p.P * p.Q;
  let n = col / PQ;
  let pq = col - n * PQ;
  let op = pq / p.Q;
  let oq = pq - op * p.Q;
  let ih = i32(op * p.sh + r * p.dh) - i32(p.ph);
  let iw = i32(oq * p.sw + s * p.dw) - i32(p.pw);
  var v = 0.0;
  if (ih >= 0 && ih < i32(p.H) && iw >= 0 && iw < i32(p.W)) {
    v = x[((n * p.C + c) * p.H + u32(ih)) * p.W + u32(iw)];
  }
  rows[idx] = v;
}
