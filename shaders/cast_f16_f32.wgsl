// Element-wise dtype cast f16 -> f32 (needs the shader-f16 feature). 1-D over n elements.
enable f16;

struct Params { n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src16: array<f16>;
@group(0) @binding(2) var<storage, read_write> dst32: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  dst32[i] = f32(src16[i]);
}
