// Batch-norm training statistics, second pass: merge the chunk partials of each channel in order (Chan et al.):
// part [C, chunks, 3] -> mean [C], invstd [C] = 1/sqrt(biased var + eps). Entry main_running also updates the
// running stats in place with PyTorch's rule: r = (1 - momentum)*r + momentum*batch, using the unbiased variance.
struct Params { C: u32, chunks: u32, momentum: f32, eps: f32, unbias: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> invstd: array<f32>;
@group(0) @binding(4) var<storage, read_write> rmean: array<f32>;
@group(0) @binding(5) var<storage, read_write> rvar: array<f32>;

// (mean, biased variance) of channel c, written to mean/invstd.
fn stats(c: u32) -> vec2f {
  var a = vec3f(0.0);
  var o = c * p.chunks * 3u;
  for (var z = 0u; z < p.chunks; z++) {
    let b = vec3f(part[o], part[o + 1u], part[o + 2u]);
    o += 3u;
    let n = a.x + b.x;
    if (b.x == 0.0) { continue; }
    let d = b.y - a.y;
    let f = b.x / n;
    a = vec3f(n, a.y + d * f, a.z + b.z + d * d * a.x * f);
  }
  let v = a.z / a.x;
  mean[c] = a.y;
  invstd[c] = 1.0 / sqrt(v + p.eps);
  return vec2f(a.y, v);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= p.C) { return; }
  _ = stats(c);
}

@compute @workgroup_size(64)
fn main_running(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= p.C) { return; }
  let s = stats(c);
  rmean[c] = (1.0 - p.momentum) * rmean[c] + p.momentum * s.x;
  rvar[c] = (1.0 - p.momentum) * rvar[c] + p.momentum * s.y * p.unbias;
}
