// Embedding backward step 5/5: dTable[v, d] = sum over the positions i of bucket v (ascending) of
// dy[i, d]; 0 for ids never seen. Deterministic: fixed order, no float atomics. One invocation per
// element of dTable (neighbouring lanes share v, so loop bounds agree and dy reads are contiguous).
// dy [N, D] -> dTable [V, D].
struct Params { V: u32, D: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> start: array<u32>;  // [V + 1]
@group(0) @binding(2) var<storage, read> list: array<u32>;   // [N]
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dTable: array<f32>;

override WG: u32 = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = gid.x + gid.y * nwg.x * WG;
  if (e >= p.V * p.D) { return; }
  let v = e / p.D;
  let d = e - v * p.D;
  let a = start[v];
  let b = start[v + 1u];
  var acc = 0.0;
  for (var k = a; k < b; k++) { acc += dy[list[k] * p.D + d]; }
  dTable[e] = acc;
}
