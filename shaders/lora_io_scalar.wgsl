// LoRA linear operand loads from scalars (any K): x, xd [M, K], W [N, K], A [R, K] at bindings 1..4.
// K is any: lanes past K are masked.
const MASK_K = true;
// Reads past a tensor return unspecified values: the caller masks lanes past K.
@group(0) @binding(1) var<storage, read> x1: array<f32>;
@group(0) @binding(2) var<storage, read> xd1: array<f32>;
@group(0) @binding(3) var<storage, read> w1: array<f32>;
@group(0) @binding(4) var<storage, read> a1: array<f32>;

/** Elements e .. e + 3. */
fn ldX(e: u32) -> vec4<f32> { return vec4<f32>(x1[e], x1[e + 1u], x1[e + 2u], x1[e + 3u]); }
fn ldXd(e: u32) -> vec4<f32> { return vec4<f32>(xd1[e], xd1[e + 1u], xd1[e + 2u], xd1[e + 3u]); }
fn ldW(e: u32) -> vec4<f32> { return vec4<f32>(w1[e], w1[e + 1u], w1[e + 2u], w1[e + 3u]); }
fn ldA(e: u32) -> vec4<f32> { return vec4<f32>(a1[e], a1[e + 1u], a1[e + 2u], a1[e + 3u]); }
