// Embedding backward step 5/5: for every id v that occurs, dTable[v, d] = sum over the positions i of
// bucket v (ascending) of dy[i, d]. The table is zero-filled beforehand (clearBuffer), so only the N
// sorted slots get work: grid x = column blocks of WG, y/z = slot k; the workgroup whose slot is the
// first of its bucket sums the bucket and writes the row, the others exit at once (the test is
// workgroup-uniform). Deterministic: fixed order, no float atomics. dy [N, D] -> dTable [V, D].
struct Params { N: u32, V: u32, D: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<i32>;
@group(0) @binding(2) var<storage, read> start: array<u32>;  // [V + 1]
@group(0) @binding(3) var<storage, read> list: array<u32>;   // [N], first start[V] entries used
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> dTable: array<f32>;

override WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let k = wid.y + wid.z * nwg.y;
  if (k >= start[p.V]) { return; }
  let v = u32(ids[list[k]]);      // list only holds positions of valid ids
  let a = start[v];
  if (k != a) { return; }         // not the first slot of its bucket
  let b = start[v + 1u];
  let d = wid.x * WG + lid;
  let dc = min(d, p.D - 1u);
  var acc = 0.0;
  for (var s = a; s < b; s++) { acc += dy[list[s] * p.D + dc]; }
  if (d < p.D) { dTable[v * p.D + d] = acc; }
}
