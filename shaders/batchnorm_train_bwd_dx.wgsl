// Batch-norm backward, input gradient: dx = A[c]*dy + B[c]*(x - mean[c]) + D[c] with coef [C, 3] = (A, B, D) from
// batchnorm_train_bwd_finalize.wgsl. dy, x, dx [N,C,H,W], 1-D over n elements.
struct Params { n: u32, C: u32, HW: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> mean: array<f32>;
@group(0) @binding(4) var<storage, read> coef: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  let c = (i / p.HW) % p.C;
  dx[i] = coef[3u * c] * dy[i] + coef[3u * c + 1u] * (x[i] - mean[c]) + coef[3u * c + 2u];
}
