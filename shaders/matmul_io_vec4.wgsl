// Matmul operand access with vec4 loads/stores (needs A's and B's contiguous dims and N to be multiples of 4).
@group(0) @binding(1) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c4: array<vec4<f32>>;

/** A elements e..e+3 (e is a multiple of 4). */
fn ldA(e: u32) -> vec4<f32> {
  return a4[e >> 2u];
}

/** B elements e..e+3 (e is a multiple of 4). */
fn ldB(e: u32) -> vec4<f32> {
  return b4[e >> 2u];
}

/** Write C[m, n..n+3] (n a multiple of 4) through the epilogue; rows and columns outside C are skipped. */
fn stC(m: u32, n: u32, v: vec4<f32>) {
  if (m >= p.M || n >= p.N) { return; }
  let ci = cOff + m * p.N + n;
  var o = v;
  // always 4 (N is a multiple of 4 here) but not known to the compiler: one copy of the epilogue code
  let cnt = min(4u, p.N - n);
  for (var i = 0u; i < cnt; i++) {
    o[i] = epilogue(v[i], n + i, ci + i);
  }
  c4[ci >> 2u] = o;
}
