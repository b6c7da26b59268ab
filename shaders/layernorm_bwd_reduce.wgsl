// Layer norm backward, parameter gradients stage 2: dweight[j] = sum_c pw[c, j], dbias[j] = sum_c pb[c, j],
// chunks summed in order (deterministic). One invocation per column j of D.
struct Params { D: u32, chunks: u32, hasW: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> pw: array<f32>;
@group(0) @binding(2) var<storage, read> pb: array<f32>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;  // unwritten when hasW == 0
@group(0) @binding(4) var<storage, read_write> db: array<f32>;

override WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let j = gid.x + gid.y * nwg.x * WG;
  if (j >= p.D) { return; }
  var sw = 0.0;
  var sb = 0.0;
  for (var c = 0u; c < p.chunks; c++) {
    sb += pb[c * p.D + j];
    if (p.hasW != 0u) { sw += pw[c * p.D + j]; }
  }
  db[j] = sb;
  if (p.hasW != 0u) { dw[j] = sw; }
}
