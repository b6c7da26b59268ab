// Softmax / log-softmax along one axis of x viewed as [outer, D, inner] (row r = (o, i), stride inner).
// T threads share a row (tree reduction in workgroup memory when T > 1); WG / T rows per workgroup.
// Numerically stable: y = exp(x - max) / sum(exp(x - max)); log: y = x - max - log(sum).
struct Params { rows: u32, D: u32, inner: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

override WG: u32 = 256;   // threads per workgroup (power of two)
override T: u32 = 1;      // threads per row (power of two, divides WG)
override LOG: bool = false;

const LOWEST: f32 = -0x1.fffffep+127f; // lowest finite f32

var<workgroup> red: array<f32, WG>;

// Max of v over the T lanes that share a row; every lane gets the result.
fn rowMax(v: f32, lid: u32, lane: u32) -> f32 {
  if (T == 1u) { return v; }
  red[lid] = v;
  workgroupBarrier();
  for (var s = T / 2u; s > 0u; s = s / 2u) {
    if (lane < s) { red[lid] = max(red[lid], red[lid + s]); }
    workgroupBarrier();
  }
  let r = red[lid - lane];
  workgroupBarrier(); // red is reused by the next reduction
  return r;
}

// Sum of v over the T lanes that share a row; every lane gets the result.
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
  let live = row < p.rows;          // dead lanes still take part in the barriers
  let st = p.inner;
  let o = row / st;
  let base = o * p.D * st + (row - o * st);
  let n = select(0u, p.D, live);

  var m = LOWEST;
  for (var j = lane; j < n; j += T) { m = max(m, x[base + j * st]); }
  m = rowMax(m, lid, lane);

  var s = 0.0;
  for (var j = lane; j < n; j += T) { s += exp(x[base + j * st] - m); }
  s = rowSum(s, lid, lane);

  if (LOG) {
    let c = m + log(s);
    for (var j = lane; j < n; j += T) { let k = base + j * st; y[k] = x[k] - c; }
  } else {
    let inv = 1.0 / s;
    for (var j = lane; j < n; j += T) { let k = base + j * st; y[k] = exp(x[k] - m) * inv; }
  }
}
