// Global average pooling: x [N*C planes, HW] -> y [N*C], the mean of each plane.
// T threads share a plane (tree reduction in workgroup memory when T > 1); WG / T planes per workgroup.
struct Params { planes: u32, HW: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

override WG: u32 = 256;   // threads per workgroup (power of two)
override T: u32 = 1;      // threads per plane (power of two, divides WG)

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let lane = lid % T;
  let plane = (wid.x + wid.y * nwg.x) * (WG / T) + lid / T;
  let n = select(0u, p.HW, plane < p.planes);   // dead lanes still take part in the barriers
  let base = plane * p.HW;
  var s = 0.0;
  for (var j = lane; j < n; j += T) { s += x[base + j]; }
  if (T > 1u) {
    red[lid] = s;
    workgroupBarrier();
    for (var k = T / 2u; k > 0u; k = k / 2u) {
      if (lane < k) { red[lid] = red[lid] + red[lid + k]; }
      workgroupBarrier();
    }
    s = red[lid];
  }
  if (lane == 0u && n > 0u) { y[plane] = s / f32(p.HW); }
}
