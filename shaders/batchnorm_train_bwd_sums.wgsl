// Batch-norm backward, first pass: per (channel, chunk) partial sums over dy [N,C,H,W] of dy and dy*(x - mean[c]),
// tree-reduced in workgroup memory in a fixed order (deterministic). part [C, chunks, 2]. With HAS_X = false only
// sum(dy) is meaningful (per-channel sum, also used for the conv2d bias gradient); x and mean are not read.
// Entry main_serial (no workgroup memory, no barriers): one invocation per (channel, chunk) sums its chunk in order;
// invocation t = k*C + c (neighbouring invocations read neighbouring channels).
struct Params { C: u32, HW: u32, M: u32, chunk: u32 }
override HAS_X: bool = true;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> mean: array<f32>;
@group(0) @binding(4) var<storage, read_write> part: array<f32>;

const WG = 256u;
var<workgroup> tree: array<vec2f, WG>;

// workgroups: x = chunks, y = C
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let c = wid.y;
  let m0 = wid.x * p.chunk;
  let m1 = min(m0 + p.chunk, p.M);
  var mu = 0.0;
  if (HAS_X) { mu = mean[c]; }
  var acc = vec2f(0.0);
  var m = m0 + lid.x;
  if (m < m1) {
    var n = m / p.HW;
    var hw = m - n * p.HW;
    loop {
      let i = (n * p.C + c) * p.HW + hw;
      let g = dy[i];
      acc.x += g;
      if (HAS_X) { acc.y = fma(g, x[i] - mu, acc.y); }
      m += WG;
      if (m >= m1) { break; }
      hw += WG;
      if (hw >= p.HW) {
        let q = hw / p.HW;
        n += q;
        hw -= q * p.HW;
      }
    }
  }
  tree[lid.x] = acc;
  workgroupBarrier();
  for (var off = WG / 2u; off > 0u; off >>= 1u) {
    if (lid.x < off) {
      tree[lid.x] += tree[lid.x + off];
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    let o = (c * nwg.x + wid.x) * 2u;
    part[o] = tree[0].x;
    part[o + 1u] = tree[0].y;
  }
}

// workgroups: ceil(C*chunks / 64); invocation t -> channel t % C, chunk t / C
@compute @workgroup_size(64)
fn main_serial(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = gid.x + gid.y * nwg.x * 64u;
  let chunks = (p.M + p.chunk - 1u) / p.chunk;
  if (t >= p.C * chunks) { return; }
  let c = t % p.C;
  let k = t / p.C;
  let m0 = k * p.chunk;
  let m1 = min(m0 + p.chunk, p.M);
  var mu = 0.0;
  if (HAS_X) { mu = mean[c]; }
  var acc = vec2f(0.0);
  var n = m0 / p.HW;
  var hw = m0 - n * p.HW;
  var i = (n * p.C + c) * p.HW + hw;
  for (var m = m0; m < m1; m++) {
    let g = dy[i];
    acc.x += g;
    if (HAS_X) { acc.y = fma(g, x[i] - mu, acc.y); }
    hw += 1u;
    i += 1u;
    if (hw == p.HW) {
      hw = 0u;
      i += (p.C - 1u) * p.HW;
    }
  }
  let o = (c * chunks + k) * 2u;
  part[o] = acc.x;
  part[o + 1u] = acc.y;
}
