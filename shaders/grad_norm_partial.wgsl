// Global gradient norm, stage 1: workgroup k reduces g[k·WG·PER .. (k+1)·WG·PER) of one [n] f32 window to a sum of squares (max |g| when INF) in partials[outBase + k]. Fixed order, no atomics.
struct Params { n: u32, outBase: u32, count: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;

const WG: u32 = 256u;
/** Elements each invocation accumulates (strided by WG, so loads stay contiguous across invocations). */
override PER: u32 = 16u;
/** Infinity norm (max |g|) instead of the L2 sum of squares. */
override INF: bool = false;

var<workgroup> sh: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let k = wid.x + wid.y * nwg.x;
  if (k >= p.count) { return; }
  let base = k * WG * PER + lid;
  var acc = 0.0;
  for (var j = 0u; j < PER; j++) {
    let e = base + j * WG;
    if (e < p.n) {
      let x = g[e];
      if (INF) { acc = max(acc, abs(x)); } else { acc = acc + x * x; }
    }
  }
  sh[lid] = acc;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) {
      if (INF) { sh[lid] = max(sh[lid], sh[lid + s]); } else { sh[lid] = sh[lid] + sh[lid + s]; }
    }
    workgroupBarrier();
  }
  if (lid == 0u) { partials[p.outBase + k] = sh[0]; }
}
