// Attention backward, pass 0: stats [BH*Tq, 2] = (lse_i, Drow_i = sum_d dOut[i, d] * out[i, d]) per query
// row, packed so passes 1 and 2 stay within 8 storage buffers. out, dOut [rows, D4] (vec4), lse [rows].
struct Params { rows: u32, D4: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> out: array<vec4f>;
@group(0) @binding(2) var<storage, read> dOut: array<vec4f>;
@group(0) @binding(3) var<storage, read> lse: array<f32>;
@group(0) @binding(4) var<storage, read_write> stats: array<vec2f>;

override WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = gid.x + gid.y * nwg.x * WG;
  if (r >= p.rows) { return; }
  var s = 0.0;
  for (var d = 0u; d < p.D4; d++) { s += dot(dOut[r * p.D4 + d], out[r * p.D4 + d]); }
  stats[r] = vec2f(lse[r], s);
}
