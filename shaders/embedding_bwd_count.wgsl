// Embedding backward step 1/5: counts[id] += 1 for every position whose id is in [0, V) and is not
// the padding index (integer atomics: the counts are exact whatever the order). ids [N] i32.
struct Params { N: u32, V: u32, pad: i32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<i32>;
@group(0) @binding(2) var<storage, read_write> counts: array<atomic<u32>>;  // [V], zeroed

override WG: u32 = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.N) { return; }
  let id = ids[i];
  if (id < 0 || u32(id) >= p.V || id == p.pad) { return; }
  atomicAdd(&counts[u32(id)], 1u);
}
