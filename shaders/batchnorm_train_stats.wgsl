// Batch-norm training statistics, first pass: per (channel, chunk) Welford partials over x [N,C,H,W].
// Channel c's M = N*H*W values, in (n, h, w) order, are cut into chunks of `chunk`; one workgroup reduces one chunk:
// each invocation runs Welford over a strided slice, then a workgroup tree merges the (count, mean, M2) triples
// (Chan et al.) in a fixed order, so results are deterministic. part [C, chunks, 3] = (count, mean, M2).
// Entry main_serial (no workgroup memory, no barriers): one invocation per (channel, chunk) runs Welford over its
// chunk in order; invocation t = k*C + c (neighbouring invocations read neighbouring channels).
struct Params { C: u32, HW: u32, M: u32, chunk: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> part: array<f32>;

const WG = 256u;
var<workgroup> tree: array<vec3f, WG>;

fn merge(a: vec3f, b: vec3f) -> vec3f {
  let n = a.x + b.x;
  if (b.x == 0.0) { return a; }
  if (a.x == 0.0) { return b; }
  let d = b.y - a.y;
  let f = b.x / n;
  return vec3f(n, a.y + d * f, a.z + b.z + d * d * a.x * f);
}

// workgroups: x = chunks, y = C
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let c = wid.y;
  let m0 = wid.x * p.chunk;
  let m1 = min(m0 + p.chunk, p.M);
  var st = vec3f(0.0);
  var m = m0 + lid.x;
  if (m < m1) {
    var n = m / p.HW;
    var hw = m - n * p.HW;
    loop {
      let v = x[(n * p.C + c) * p.HW + hw];
      st.x += 1.0;
      let d = v - st.y;
      st.y += d / st.x;
      st.z += d * (v - st.y);
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
  tree[lid.x] = st;
  workgroupBarrier();
  for (var off = WG / 2u; off > 0u; off >>= 1u) {
    if (lid.x < off) {
      tree[lid.x] = merge(tree[lid.x], tree[lid.x + off]);
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    let o = (c * nwg.x + wid.x) * 3u;
    let r = tree[0];
    part[o] = r.x;
    part[o + 1u] = r.y;
    part[o + 2u] = r.z;
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
  var st = vec3f(0.0);
  var n = m0 / p.HW;
  var hw = m0 - n * p.HW;
  var i = (n * p.C + c) * p.HW + hw;
  for (var m = m0; m < m1; m++) {
    let v = x[i];
    st.x += 1.0;
    let d = v - st.y;
    st.y += d / st.x;
    st.z += d * (v - st.y);
    hw += 1u;
    i += 1u;
    if (hw == p.HW) {
      hw = 0u;
      i += (p.C - 1u) * p.HW;
    }
  }
  let o = (c * chunks + k) * 3u;
  part[o] = st.x;
  part[o + 1u] = st.y;
  part[o + 2u] = st.z;
}
