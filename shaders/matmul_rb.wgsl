// Matmul, register blocking without workgroup memory or subgroups: each invocation computes an 8×8 block of C [M, N]
// (rows 8·y .. +7, column groups of 4 at x and x + 8) from 4×4 blocks of A and B loaded as vec4 along their contiguous dims.
// Workgroup 8×8 invocations = a 64×64 tile of C. Grid: x = ceil(ceil(N/4) / 16), y = ceil(M / 64), z = batch.
// Followed by matmul_common + an io file.

struct Acc4 {
  r0: vec4<f32>,
  r1: vec4<f32>,
  r2: vec4<f32>,
  r3: vec4<f32>,
}

/** acc.r_i += Σ_kk a[i][kk] · b[kk]: a holds 4 rows of op(A), b 4 rows of op(B). */
fn mk4(s: Acc4, a: mat4x4<f32>, b: mat4x4<f32>) -> Acc4 {
  var o = s;
  for (var kk = 0u; kk < 4u; kk++) {
    let bk = b[kk];
    o.r0 = fma(vec4<f32>(a[0][kk]), bk, o.r0);
    o.r1 = fma(vec4<f32>(a[1][kk]), bk, o.r1);
    o.r2 = fma(vec4<f32>(a[2][kk]), bk, o.r2);
    o.r3 = fma(vec4<f32>(a[3][kk]), bk, o.r3);
  }
  return o;
}

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  setBatch(wg.z);
  let m0 = (wg.y * 8u + lid.y) * 8u;
  let n0 = 4u * (wg.x * 16u + lid.x);
  let n1 = n0 + 32u;
  var c00: Acc4;
  var c01: Acc4;
  var c10: Acc4;
  var c11: Acc4;
  for (var k = 0u; k < p.K; k += 4u) {
    let a0 = loadA4(m0, k);
    let a1 = loadA4(m0 + 4u, k);
    let b0 = loadB4(k, n0);
    let b1 = loadB4(k, n1);
    c00 = mk4(c00, a0, b0);
    c01 = mk4(c01, a0, b1);
    c10 = mk4(c10, a1, b0);
    c11 = mk4(c11, a1, b1);
  }
  // stores run once per invocation: one loop whose trip count depends on M, so the compiler keeps a
  // single copy of the (large) store + epilogue code
  var rows = array<vec4<f32>, 16>(
    c00.r0, c00.r1, c00.r2, c00.r3, c10.r0, c10.r1, c10.r2, c10.r3,
    c01.r0, c01.r1, c01.r2, c01.r3, c11.r0, c11.r1, c11.r2, c11.r3,
  );
  let nrows = min(8u, p.M - min(m0, p.M));
  for (var i = 0u; i < nrows; i++) {
    stC(m0 + i, n0, rows[i]);
    stC(m0 + i, n1, rows[8u + i]);
  }
}
