// Embedding backward step 3/5: bucket positions by id: list[start[id] + k] = i (k from an atomic
// cursor, so the order inside a bucket is arbitrary until step 4 sorts it). ids [N] i32.
struct Params { N: u32, V: u32, pad: i32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<i32>;
@group(0) @binding(2) var<storage, read> start: array<u32>;             // [V + 1]
@group(0) @binding(3) var<storage, read_write> cursor: array<atomic<u32>>;  // [V], zeroed by the scan
@group(0) @binding(4) var<storage, read_write> list: array<u32>;         // [N]

override WG: u32 = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.N) { return; }
  let id = ids[i];
  if (id < 0 || u32(id) >= p.V || id == p.pad) { return; }
  let k = atomicAdd(&cursor[u32(id)], 1u);
  list[start[u32(id)] + k] = i;
}
