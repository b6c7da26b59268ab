// Matmul operand access with scalar loads/stores: any alignment (4 consecutive loads stand in for a vec4).
@group(0) @binding(1) var<storage, read> a1: array<f32>;
@group(0) @binding(2) var<storage, read> b1: array<f32>;
@group(0) @binding(3) var<storage, read_write> c1: array<f32>;

/** A elements e..e+3 (reads past the tensor return unspecified values; callers mask or never store them). */
fn ldA(e: u32) -> vec4<f32> {
  return vec4<f32>(a1[e], a1[e + 1u], a1[e + 2u], a1[e + 3u]);
}

/** B elements e..e+3 (same contract as ldA). */
fn ldB(e: u32) -> vec4<f32> {
  return vec4<f32>(b1[e], b1[e + 1u], b1[e + 2u], b1[e + 3u]);
}

/** Write C[m, n..n+3] through the epilogue; rows and columns outside C are skipped. */
fn stC(m: u32, n: u32, v: vec4<f32>) {
  if (m >= p.M) { return; }
  if (n >= p.N) { return; }
  let ci = cOff + m * p.N + n;
  // trip count depends on N: one copy of the epilogue code
  let cnt = min(4u, p.N - n);
  for (var i = 0u; i < cnt; i++) {
    c1[ci + i] = epilogue(v[i], n + i, ci + i);
  }
}
