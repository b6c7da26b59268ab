// Dropout forward/backward over n elements: y = x * keep / (1 - p), keep drawn from Philox-4x32-10.
// Element j (absolute index = offset + local index) uses word j % 4 of Philox(counter = (j / 4 as
// 64-bit lo, hi, 0, 0), key = (seed lo, seed hi)); keep iff word >= thresh (thresh = p * 2^32).
// One invocation per absolute 4-element group: g = g0 + t covers local indices 4t - r .. 4t - r + 3.
struct Params {
  n: u32,
  g0lo: u32, g0hi: u32,   // first absolute group, floor(offset / 4), as 64 bits
  r: u32,                 // offset % 4
  seedLo: u32, seedHi: u32,
  thresh: u32,
  dropAll: u32,           // p == 1: every element dropped
  scale: f32,             // 1 / (1 - p)
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

override WG: u32 = 256u;

// High 32 bits of the 64-bit product a * b, from 16-bit halves (WGSL has no 64-bit integers).
fn mulhi(a: u32, b: u32) -> u32 {
  let al = a & 0xffffu; let ah = a >> 16u;
  let bl = b & 0xffffu; let bh = b >> 16u;
  let ll = al * bl;
  let m1 = ah * bl;
  let m2 = al * bh;
  let mid = (ll >> 16u) + (m1 & 0xffffu) + (m2 & 0xffffu);
  return ah * bh + (m1 >> 16u) + (m2 >> 16u) + (mid >> 16u);
}

fn philox(ctr: vec4u, key: vec2u) -> vec4u {
  var c = ctr;
  var k = key;
  for (var i = 0u; i < 10u; i++) {
    let hi0 = mulhi(0xD2511F53u, c.x); let lo0 = 0xD2511F53u * c.x;
    let hi1 = mulhi(0xCD9E8D57u, c.z); let lo1 = 0xCD9E8D57u * c.z;
    c = vec4u(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    k = k + vec2u(0x9E3779B9u, 0xBB67AE85u);
  }
  return c;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = gid.x + gid.y * nwg.x * WG;
  let first = 4u * t;                       // local index + r of word 0
  if (first >= p.n + p.r) { return; }
  let glo = p.g0lo + t;
  let ghi = p.g0hi + select(0u, 1u, glo < t);
  let u = philox(vec4u(glo, ghi, 0u, 0u), vec2u(p.seedLo, p.seedHi));
  for (var w = 0u; w < 4u; w++) {
    let jr = first + w;                     // local index + r
    if (jr < p.r || jr - p.r >= p.n) { continue; }
    let j = jr - p.r;
    let keep = u[w] >= p.thresh && p.dropAll == 0u;
    y[j] = select(0.0, x[j] * p.scale, keep);
  }
}
