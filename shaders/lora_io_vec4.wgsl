// LoRA linear operand loads as vec4 (K a multiple of 4): x, xd [M, K], W [N, K], A [R, K] at bindings 1..4.
// K is a multiple of 4: no lanes past K.
const MASK_K = false;
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> xd4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> w4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> a4: array<vec4<f32>>;

/** Elements e .. e + 3 (e a multiple of 4). */
fn ldX(e: u32) -> vec4<f32> { return x4[e >> 2u]; }
fn ldXd(e: u32) -> vec4<f32> { return xd4[e >> 2u]; }
fn ldW(e: u32) -> vec4<f32> { return w4[e >> 2u]; }
fn ldA(e: u32) -> vec4<f32> { return a4[e >> 2u]; }
