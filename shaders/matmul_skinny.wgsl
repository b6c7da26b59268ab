// Matmul for skinny shapes (tiny M or N): one invocation per 1×4 strip of C [M, N], flattened over (row, column group)
// so small dimensions waste no lanes. Grid: grid1d(M · ceil(N/4), 64) as x, y; z = batch. Followed by matmul_common + an io file.

/** op(A)[m, k .. k + 3] (zero past K). */
fn loadArow(m: u32, k: u32) -> vec4<f32> {
  if (TRANS_A) {
    // A is [K, M]: load the aligned 4-row block and keep row m
    let blk = loadA4(m & ~3u, k);
    return blk[m & 3u];
  }
  return maskK4(ldA(aIdx(m, k)), k);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  let groups = (p.N + 3u) / 4u;
  let m = i / groups;
  if (m >= p.M) { return; }
  setBatch(gid.z);
  let n = 4u * (i % groups);
  var acc = vec4<f32>(0.0);
  for (var k = 0u; k < p.K; k += 4u) {
    let a = loadArow(m, k);
    let b = loadB4(k, n);
    acc = fma(vec4<f32>(a.x), b[0], acc);
    acc = fma(vec4<f32>(a.y), b[1], acc);
    acc = fma(vec4<f32>(a.z), b[2], acc);
    acc = fma(vec4<f32>(a.w), b[3], acc);
  }
  stC(m, n, acc);
}
