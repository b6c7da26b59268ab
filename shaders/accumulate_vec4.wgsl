// In-place gradient accumulation dst += src over nq vec4s (autograd's `+=`, both sides bound as vec4 windows whose
// tail padding is scratch); 1-D grid. Four elements per invocation: CPU drivers pay per invocation.
struct Params { nq: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4f>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.nq) { return; }
  dst[i] = dst[i] + src[i];
}
