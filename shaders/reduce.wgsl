// Reduce f32 x over any axis set: y[g] = ⊕_{r in chunk c} x[base(o) + roff(r)], g = o·split + c (sum / max / min; mean = sum / div).
// The wrapper collapses x into kept dims k0..k2 (output order) and reduced dims r0..r2 (R = r0·r1·r2 elements per
// output), innermost first, with their x strides. Each output's R is cut into `split` chunks (split > 1 writes
// partials that a second launch reduces). T threads share a chunk (tree in workgroup memory), WG / T chunks per workgroup.
// KVEC = 4 (with T = 1, kept dims innermost and contiguous, k0 % 4 == 0): a thread owns 4 adjacent outputs.
struct Params {
  ngroups: u32, split: u32, rlen: u32, chunk: u32, div: f32,
  op: u32,    // 0 sum, 1 max, 2 min (uniform, not an override: fewer pipelines to compile)
  krank: u32, // kept dims in use (0..3)
  k0: u32, k1: u32, k2: u32, ks0: u32, ks1: u32, ks2: u32,
  r0: u32, r1: u32, r2: u32, rs0: u32, rs1: u32, rs2: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

override RRANK: u32 = 1u; // reduced dims in use (1..3)
override WG: u32 = 256u;  // threads per workgroup (power of two)
override T: u32 = 1u;     // threads per chunk (power of two dividing WG)
override KVEC: u32 = 1u;  // outputs per thread: 1, or 4 (needs T = 1)

// Partial sums are folded into the running total every BLOCK elements, so no f32 accumulation
// chain is longer than BLOCK + (elements per thread) / BLOCK + log2(T).
const BLOCK: u32 = 32u;

var<workgroup> red: array<f32, WG>;

fn combine(u: f32, v: f32) -> f32 {
  if (p.op == 1u) { return max(u, v); }
  if (p.op == 2u) { return min(u, v); }
  return u + v;
}

fn combine4(u: vec4f, v: vec4f) -> vec4f {
  if (p.op == 1u) { return max(u, v); }
  if (p.op == 2u) { return min(u, v); }
  return u + v;
}

fn finish(v: f32) -> f32 {
  return select(v, v / p.div, p.op == 0u);
}

// Offset in x of output o's first element (its kept coordinates).
fn baseOf(o: u32) -> u32 {
  var r = o;
  var off = 0u;
  if (p.krank > 0u) { let c = select(r % p.k0, r, p.krank == 1u); r = r / p.k0; off += c * p.ks0; }
  if (p.krank > 1u) { let c = select(r % p.k1, r, p.krank == 2u); r = r / p.k1; off += c * p.ks1; }
  if (p.krank > 2u) { off += r * p.ks2; }
  return off;
}

// Offset in x of the i-th reduced element (its reduced coordinates).
fn roff(i: u32) -> u32 {
  if (RRANK == 1u) { return i * p.rs0; }
  var r = i;
  let c0 = r % p.r0;
  r = r / p.r0;
  var off = c0 * p.rs0;
  if (RRANK == 2u) { return off + r * p.rs1; }
  off += (r % p.r1) * p.rs1;
  return off + (r / p.r1) * p.rs2;
}

fn load4(b: u32) -> vec4f {
  return vec4f(x[b], x[b + 1u], x[b + 2u], x[b + 3u]);
}

// KVEC = 4: outputs o..o+3 (adjacent along the contiguous kept dim k0) for chunk c, group g = (o / 4)·split + c.
fn columns4(g: u32) {
  let o = (g / p.split) * 4u;
  let c = g % p.split;
  let start = c * p.chunk;
  let end = min(p.rlen, start + p.chunk);
  let base = baseOf(o);
  let init = select(vec4f(0.0), load4(base + roff(start)), p.op != 0u);
  var acc = init;
  var part = init;
  var n = 0u;
  for (var i = start; i < end; i++) {
    part = combine4(part, load4(base + roff(i)));
    n += 1u;
    if (n == BLOCK) {
      acc = combine4(acc, part);
      part = init;
      n = 0u;
    }
  }
  acc = combine4(acc, part);
  for (var k = 0u; k < 4u; k++) {
    y[(o + k) * p.split + c] = finish(acc[k]);
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let lane = lid % T;
  let g = (wid.x + wid.y * nwg.x) * (WG / T) + lid / T;
  if (KVEC == 4u) {
    if (g < p.ngroups) { columns4(g); }
    return;
  }
  let live = g < p.ngroups; // dead lanes still take part in the barriers
  var acc = 0.0;
  if (live) {
    let o = g / p.split;
    let start = (g % p.split) * p.chunk;
    let end = min(p.rlen, start + p.chunk);
    let base = baseOf(o);
    // Identity: 0 for sum; for max/min the chunk's first element (always present).
    let init = select(0.0, x[base + roff(start)], p.op != 0u);
    var part = init;
    var n = 0u;
    acc = init;
    for (var i = start + lane; i < end; i += T) {
      part = combine(part, x[base + roff(i)]);
      n += 1u;
      if (n == BLOCK) {
        acc = combine(acc, part);
        part = init;
        n = 0u;
      }
    }
    acc = combine(acc, part);
  }
  if (T > 1u) {
    red[lid] = acc;
    workgroupBarrier();
    for (var s = T / 2u; s > 0u; s = s / 2u) {
      if (lane < s) { red[lid] = combine(red[lid], red[lid + s]); }
      workgroupBarrier();
    }
    acc = red[lid];
  }
  if (live && lane == 0u) {
    y[g] = finish(acc);
  }
}
