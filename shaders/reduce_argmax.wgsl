// argmax of f32 x viewed as [outer, R, inner] along R: y[o·inner + i] = first r maximising x[(o·R + r)·inner + i] (i32).
// T threads share an output (strided over r, then a tree in workgroup memory; ties keep the lower r), WG / T outputs
// per workgroup. NaNs never win (every comparison with NaN is false).
struct Params { nout: u32, rlen: u32, inner: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<i32>;

override WG: u32 = 256u; // threads per workgroup (power of two)
override T: u32 = 1u;    // threads per output (power of two dividing WG)

var<workgroup> bestV: array<f32, WG>;
var<workgroup> bestI: array<u32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let lane = lid % T;
  let g = (wid.x + wid.y * nwg.x) * (WG / T) + lid / T;
  let live = g < p.nout; // dead lanes still take part in the barriers
  var v = 0.0;
  var idx = 0u;
  if (live) {
    let base = (g / p.inner) * p.rlen * p.inner + g % p.inner;
    // Start from element 0 so every lane holds a real candidate; scanning r upwards with a strict
    // comparison keeps the first maximum.
    v = x[base];
    for (var r = lane; r < p.rlen; r += T) {
      let u = x[base + r * p.inner];
      if (u > v) { v = u; idx = r; }
    }
  }
  if (T > 1u) {
    bestV[lid] = v;
    bestI[lid] = idx;
    workgroupBarrier();
    for (var s = T / 2u; s > 0u; s = s / 2u) {
      if (lane < s) {
        let u = bestV[lid + s];
        let j = bestI[lid + s];
        if (u > bestV[lid] || (u == bestV[lid] && j < bestI[lid])) {
          bestV[lid] = u;
          bestI[lid] = j;
        }
      }
      workgroupBarrier();
    }
    idx = bestI[lid];
  }
  if (live && lane == 0u) {
    y[g] = i32(idx);
  }
}
