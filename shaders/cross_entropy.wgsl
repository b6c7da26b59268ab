// Fused log-softmax + NLL (+ label smoothing) with its gradient, one pass per row:
// logits [B, C], targets [B] i32 -> rowLoss [B] (0 for ignored rows, NaN for targets outside [0, C)),
// and when grad != 0: dlogits [B, C] = (softmax - (1-eps) onehot - eps/C) * scale, scale = 1/count for the
// mean (count = non-ignored targets, counted here by every workgroup: integers, so exact) or 1.
// T threads share a row (online max/sum, tree reduction in workgroup memory when T > 1).
struct Params { B: u32, C: u32, ignore: i32, eps: f32, mean: u32, grad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> rowLoss: array<f32>;
@group(0) @binding(4) var<storage, read_write> dlogits: array<f32>;  // unwritten when grad == 0

override WG: u32 = 256u;
override T: u32 = 1u;

const LOWEST: f32 = -3.0e38;

var<workgroup> red: array<vec3f, WG>;   // (max, sum exp(x - max), sum x) per lane
var<workgroup> wgCount: atomic<u32>;

fn combine(a: vec3f, b: vec3f) -> vec3f {
  let m = max(a.x, b.x);
  return vec3f(m, a.y * exp(a.x - m) + b.y * exp(b.x - m), a.z + b.z);
}

fn rowReduce(v: vec3f, lid: u32, lane: u32) -> vec3f {
  if (T == 1u) { return v; }
  red[lid] = v;
  workgroupBarrier();
  for (var s = T / 2u; s > 0u; s = s / 2u) {
    if (lane < s) { red[lid] = combine(red[lid], red[lid + s]); }
    workgroupBarrier();
  }
  let r = red[lid - lane];
  workgroupBarrier();
  return r;
}

// A quiet NaN built at run time (a constant NaN is a WGSL compile error).
fn nan() -> f32 {
  let bits = 0x7fc00000u;
  return bitcast<f32>(bits);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let lane = lid % T;
  let row = (wid.x + wid.y * nwg.x) * (WG / T) + lid / T;
  let live = row < p.B;

  // Non-ignored targets over the whole batch (only the mean gradient needs it).
  var scale = 1.0;
  if (p.grad != 0u && p.mean != 0u) {
    var c = 0u;
    for (var b = lid; b < p.B; b += WG) { c += select(1u, 0u, targets[b] == p.ignore); }
    atomicAdd(&wgCount, c);
    workgroupBarrier();
    scale = 1.0 / f32(max(atomicLoad(&wgCount), 1u));
  }

  var t = p.ignore;
  if (live) { t = targets[row]; }
  let ignored = t == p.ignore;
  let bad = !ignored && (t < 0 || u32(t) >= p.C);
  let n = select(0u, p.C, live && !ignored);   // ignored rows: no reads, zero gradient
  let base = row * p.C;

  var acc = vec3f(LOWEST, 0.0, 0.0);
  for (var j = lane; j < n; j += T) {
    let v = logits[base + j];
    if (v > acc.x) { acc = vec3f(v, acc.y * exp(acc.x - v) + 1.0, acc.z + v); }
    else { acc = vec3f(acc.x, acc.y + exp(v - acc.x), acc.z + v); }
  }
  let r = rowReduce(acc, lid, lane);
  if (!live) { return; }
  let lse = r.x + log(r.y);
  let C = f32(p.C);

  if (lane == 0u) {
    var loss = 0.0;
    if (bad) { loss = nan(); }
    else if (!ignored) {
      loss = (1.0 - p.eps) * (lse - logits[base + u32(t)]) + p.eps * (lse - r.z / C);
    }
    rowLoss[row] = loss;
  }
  if (p.grad != 0u) {
    let off = p.eps / C;
    for (var j = lane; j < p.C; j += T) {
      var g = 0.0;
      if (bad) { g = nan(); }
      else if (!ignored) {
        let hit = select(0.0, 1.0 - p.eps, i32(j) == t);
        g = (exp(logits[base + j] - lse) - hit - off) * scale;
      }
      dlogits[base + j] = g;
    }
  }
}
