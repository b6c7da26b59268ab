// Second pass of the split conv2d weight gradient: dw[e] = sum over z < split of part[z*n + e], in order (deterministic).
// part [split, n] -> dw [n], 1-D over n.
struct Params { n: u32, split: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> dw: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = gid.x + gid.y * nwg.x * 256u;
  if (e >= p.n) { return; }
  var s = 0.0;
  var o = e;
  for (var z = 0u; z < p.split; z++) {
    s += part[o];
    o += p.n;
  }
  dw[e] = s;
}
