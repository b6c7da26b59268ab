// Copy rows between widths for attention's head-dim padding: src [rows, a] -> dst [rows, b],
// dst[r, c] = src[r, c] for c < min(a, b), else 0. Pads Dh to a multiple of 4 (a = Dh, b = 4·ceil(Dh/4))
// and crops gradients back (a = padded, b = Dh). One invocation per element of dst.
struct Params { rows: u32, a: u32, b: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

override WG: u32 = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = gid.x + gid.y * nwg.x * WG;
  if (e >= p.rows * p.b) { return; }
  let r = e / p.b;
  let c = e - r * p.b;
  var x = 0.0;
  if (c < p.a) { x = src[r * p.a + c]; }
  dst[e] = x;
}
