// Global average-pool backward: dx[n,c,h,w] = dy[n,c] / (H*W). dy [N,C] -> dx [N,C,H,W], 1-D over N*C*H*W.
struct Params { n: u32, HW: u32, inv: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  dx[i] = dy[i / p.HW] * p.inv;
}
