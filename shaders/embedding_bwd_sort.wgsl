// Embedding backward step 4/5: sort each id's bucket of positions ascending (insertion sort, one
// invocation per id; buckets of 0 or 1 cost nothing), making the summation order of step 5 fixed.
struct Params { V: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> start: array<u32>;     // [V + 1]
@group(0) @binding(2) var<storage, read_write> list: array<u32>;

override WG: u32 = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let v = gid.x + gid.y * nwg.x * WG;
  if (v >= p.V) { return; }
  let a = start[v];
  let b = start[v + 1u];
  for (var k = a + 1u; k < b; k++) {
    let key = list[k];
    var j = k;
    while (j > a && list[j - 1u] > key) {
      list[j] = list[j - 1u];
      j--;
    }
    list[j] = key;
  }
}
