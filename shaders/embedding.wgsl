// Embedding gather: ids i32 [tokens], table [V, D] -> y [tokens, D]; y[t, j] = table[ids[t], j].
// An id outside [0, V) yields a zero row (no out-of-bounds read). One invocation per output element
// (consecutive invocations read consecutive elements of a row); 1-D grid split over x/y.
struct Params { total: u32, V: u32, D: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<i32>;
@group(0) @binding(2) var<storage, read> table: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.total) { return; }
  let t = i / p.D;
  let j = i - t * p.D;
  let id = ids[t];
  var v = 0.0;
  if (id >= 0 && u32(id) < p.V) { v = table[u32(id) * p.D + j]; }
  y[i] = v;
}
