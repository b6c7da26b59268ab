// Fill a tensor with one f32 value: y[i] = value for i < 4·nq (y: [n] viewed as nq vec4s, tail padding is scratch).
struct Params { nq: u32, value: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> y: array<vec4f>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let q = gid.x + gid.y * nwg.x * 256u;
  if (q >= p.nq) { return; }
  y[q] = vec4f(p.value);
}
