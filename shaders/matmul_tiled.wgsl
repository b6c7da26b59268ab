// Matmul with workgroup-memory tiling (the classic GPU kernel): a 64×64 tile of C [M, N] per workgroup of 16×16
// invocations, each computing 4×4 outputs; A and B tiles of depth 16 are staged in workgroup memory.
// Grid: x = ceil(N / 64), y = ceil(M / 64), z = batch. Followed by matmul_common + an io file.

// tileA[k * 16 + i] = op(A) rows m0 + 4i .. + 3 at k0 + k; tileB[k * 16 + j] = op(B) columns n0 + 4j .. + 3 at k0 + k
var<workgroup> tileA: array<vec4<f32>, 256>;
var<workgroup> tileB: array<vec4<f32>, 256>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  setBatch(wg.z);
  let m0 = wg.y * 64u;
  let n0 = wg.x * 64u;
  let t = lid.y * 16u + lid.x;
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  for (var k0 = 0u; k0 < p.K; k0 += 16u) {
    // stage A: 64 rows × 16 k = 256 loads of 4 along A's contiguous dim
    if (TRANS_A) {
      let k = t / 16u;
      let i = t % 16u;
      let m = min(m0 + 4u * i, (p.M - 1u) & ~3u);
      tileA[k * 16u + i] = maskK1(ldA(aIdx(m, k0 + k)), k0 + k);
    } else {
      let r = t / 4u;
      let kq = 4u * (t % 4u);
      let v = maskK4(ldA(aIdx(min(m0 + r, p.M - 1u), k0 + kq)), k0 + kq);
      for (var c = 0u; c < 4u; c++) { tileA[(kq + c) * 16u + r / 4u][r % 4u] = v[c]; }
    }
    // stage B: 16 k × 64 columns
    if (TRANS_B) {
      let cidx = t / 4u;
      let kq = 4u * (t % 4u);
      let v = maskK4(ldB(bIdx(k0 + kq, min(n0 + cidx, p.N - 1u))), k0 + kq);
      for (var c = 0u; c < 4u; c++) { tileB[(kq + c) * 16u + cidx / 4u][cidx % 4u] = v[c]; }
    } else {
      let k = t / 16u;
      let j = t % 16u;
      let n = min(n0 + 4u * j, (p.N - 1u) & ~3u);
      tileB[k * 16u + j] = maskK1(ldB(bIdx(k0 + k, n)), k0 + k);
    }
    workgroupBarrier();
    // the last tile stops at K (a trip count unknown at compile time also keeps CPU compilers from
    // unrolling this loop into very large code)
    let kn = min(16u, p.K - k0);
    for (var k = 0u; k < kn; k++) {
      let a = tileA[k * 16u + lid.y];
      let b = tileB[k * 16u + lid.x];
      acc0 = fma(vec4<f32>(a.x), b, acc0);
      acc1 = fma(vec4<f32>(a.y), b, acc1);
      acc2 = fma(vec4<f32>(a.z), b, acc2);
      acc3 = fma(vec4<f32>(a.w), b, acc3);
    }
    workgroupBarrier();
  }
  let m = m0 + 4u * lid.y;
  let n = n0 + 4u * lid.x;
  var rows = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
  // trip count depends on M: one copy of the store + epilogue code
  let nrows = min(4u, p.M - min(m, p.M));
  for (var i = 0u; i < nrows; i++) {
    stC(m + i, n, rows[i]);
  }
}
