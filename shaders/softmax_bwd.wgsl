// Softmax / log-softmax backward along one axis of [outer, D, inner] (row r = (o, i), stride inner).
// softmax (y = p): dx = y * (dy - sum(dy * y)); log-softmax (y = log p): dx = dy - exp(y) * sum(dy).
// T threads share a row (tree reduction when T > 1); WG / T rows per workgroup.
struct Params { rows: u32, D: u32, inner: u32, log: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

override WG: u32 = 256u;
override T: u32 = 1u;

var<workgroup> red: array<f32, WG>;

fn rowSum(v: f32, lid: u32, lane: u32) -> f32 {
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
  let n = select(0u, p.D, row < p.rows);
  let st = p.inner;
  let o = row / st;
  let base = o * p.D * st + (row - o * st);

  var s = 0.0;
  for (var j = lane; j < n; j += T) {
    let k = base + j * st;
    if (p.log != 0u) { s += dy[k]; } else { s += dy[k] * y[k]; }
  }
  s = rowSum(s, lid, lane);

  for (var j = lane; j < n; j += T) {
    let k = base + j * st;
    if (p.log != 0u) { dx[k] = dy[k] - exp(y[k]) * s; } else { dx[k] = y[k] * (dy[k] - s); }
  }
}
