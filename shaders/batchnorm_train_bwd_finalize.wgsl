// Batch-norm backward, second pass: add the chunk partials of each channel in order: part [C, chunks, 2] ->
// dbias [C] = sum dy, dweight [C] = invstd * sum dy*(x - mean), and per-channel coefficients coef [C, 3] for
// dx = A*dy + B*(x - mean) + D with A = w*invstd, B = -A*invstd*dweight/M, D = -A*dbias/M.
// Entry main_sum writes only dbias (a plain per-channel sum, used for the conv2d bias gradient; binds part, dbias).
struct Params { C: u32, chunks: u32, invM: f32 }
override HAS_WEIGHT: bool = true;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> dbias: array<f32>;
@group(0) @binding(3) var<storage, read> invstd: array<f32>;
@group(0) @binding(4) var<storage, read> weight: array<f32>;
@group(0) @binding(5) var<storage, read_write> dweight: array<f32>;
@group(0) @binding(6) var<storage, read_write> coef: array<f32>;

fn sums(c: u32) -> vec2f {
  var s = vec2f(0.0);
  var o = c * p.chunks * 2u;
  for (var z = 0u; z < p.chunks; z++) {
    s += vec2f(part[o], part[o + 1u]);
    o += 2u;
  }
  return s;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= p.C) { return; }
  let s = sums(c);
  let is = invstd[c];
  let db = s.x;
  let dw = s.y * is;
  dbias[c] = db;
  dweight[c] = dw;
  var a = is;
  if (HAS_WEIGHT) { a *= weight[c]; }
  coef[3u * c] = a;
  coef[3u * c + 1u] = -a * is * dw * p.invM;
  coef[3u * c + 2u] = -a * db * p.invM;
}

@compute @workgroup_size(64)
fn main_sum(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= p.C) { return; }
  dbias[c] = sums(c).x;
}
