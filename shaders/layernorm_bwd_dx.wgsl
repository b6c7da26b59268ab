// Layer norm backward, input gradient: x, dy [rows, D], mean/rstd [rows], w [D] -> dx [rows, D].
// g = dy * w, xhat = (x - mean) * rstd, dx = rstd * (g - mean(g) - xhat * mean(g * xhat)).
// T threads share a row (tree reduction when T > 1); WG / T rows per workgroup.
struct Params { rows: u32, D: u32, hasW: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> mean: array<f32>;
@group(0) @binding(4) var<storage, read> rstd: array<f32>;
@group(0) @binding(5) var<storage, read> w: array<f32>;   // unread when hasW == 0
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;

override WG: u32 = 256u;
override T: u32 = 1u;

var<workgroup> red: array<vec2f, WG>;

fn rowSum2(v: vec2f, lid: u32, lane: u32) -> vec2f {
  if (T == 1u) { return v; }
  red[lid] = v;
  workgroupBarrier();
  for (var s = T / 2u; s > 0u; s = s / 2u) {
    if (lane < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  let r = red[lid - lane];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let lane = lid % T;
  let row = (wid.x + wid.y * nwg.x) * (WG / T) + lid / T;
  let live = row < p.rows;
  let n = select(0u, p.D, live);
  let base = row * p.D;
  var m = 0.0;
  var rs = 0.0;
  if (live) { m = mean[row]; rs = rstd[row]; }

  var acc = vec2f(0.0);
  for (var j = lane; j < n; j += T) {
    var g = dy[base + j];
    if (p.hasW != 0u) { g = g * w[j]; }
    acc += vec2f(g, g * (x[base + j] - m) * rs);
  }
  let sums = rowSum2(acc, lid, lane) / f32(p.D);

  for (var j = lane; j < n; j += T) {
    var g = dy[base + j];
    if (p.hasW != 0u) { g = g * w[j]; }
    let xh = (x[base + j] - m) * rs;
    dx[base + j] = rs * (g - sums.x - xh * sums.y);
  }
}
