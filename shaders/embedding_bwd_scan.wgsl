// Embedding backward step 2/5: start = exclusive prefix sum of counts [V] -> start [V + 1]
// (start[V] = total), and counts reset to 0 for use as fill cursors. One workgroup: each thread
// scans a contiguous chunk, then a workgroup scan of the chunk totals.
struct Params { V: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> counts: array<u32>;
@group(0) @binding(2) var<storage, read_write> start: array<u32>;

const WG: u32 = 256u;
var<workgroup> tot: array<u32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  let chunk = (p.V + WG - 1u) / WG;
  let a = min(p.V, lid * chunk);
  let b = min(p.V, a + chunk);
  var s = 0u;
  for (var v = a; v < b; v++) { s += counts[v]; }
  tot[lid] = s;
  workgroupBarrier();
  // Inclusive Hillis-Steele scan of the chunk totals.
  for (var off = 1u; off < WG; off = off * 2u) {
    var add = 0u;
    if (lid >= off) { add = tot[lid - off]; }
    workgroupBarrier();
    tot[lid] += add;
    workgroupBarrier();
  }
  var run = tot[lid] - s;   // exclusive prefix of this chunk
  for (var v = a; v < b; v++) {
    start[v] = run;
    run += counts[v];
    counts[v] = 0u;
  }
  if (lid == WG - 1u) { start[p.V] = tot[WG - 1u]; }
}
