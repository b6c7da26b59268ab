// Layer norm backward, parameter gradients stage 1 (deterministic, no atomics): for row chunk c
// (rows c*R .. c*R+R-1) and column j, pw[c, j] = sum dy * xhat, pb[c, j] = sum dy, rows in order.
// Grid: x = column blocks of WG, y = chunks. With one chunk, pw/pb are dweight/dbias themselves.
struct Params { rows: u32, D: u32, R: u32, hasW: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> mean: array<f32>;
@group(0) @binding(4) var<storage, read> rstd: array<f32>;
@group(0) @binding(5) var<storage, read_write> pw: array<f32>;  // [chunks, D], unwritten when hasW == 0
@group(0) @binding(6) var<storage, read_write> pb: array<f32>;  // [chunks, D]

override WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let j = gid.x;
  if (j >= p.D) { return; }
  let c = wid.y;
  let r0 = c * p.R;
  let r1 = min(p.rows, r0 + p.R);
  var sw = 0.0;
  var sb = 0.0;
  for (var r = r0; r < r1; r++) {
    let g = dy[r * p.D + j];
    sb += g;
    if (p.hasW != 0u) { sw += g * (x[r * p.D + j] - mean[r]) * rstd[r]; }
  }
  pb[c * p.D + j] = sb;
  if (p.hasW != 0u) { pw[c * p.D + j] = sw; }
}
