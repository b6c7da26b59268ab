// Activation backward, element-wise over n elements: dx = dy * f'(x), x = the activation's input.
// OP: 0 relu (f'(0) = 0), 1 exact erf GELU, 2 tanh-approximate GELU, 3 tanh, 4 sigmoid.
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

override OP: u32 = 0u;
override WG: u32 = 256u;

const INV_SQRT2: f32 = 0.70710678118654752;
const INV_SQRT_2PI: f32 = 0.39894228040143268;
const GELU_K: f32 = 0.79788456080286536; // sqrt(2 / pi)
const GELU_C: f32 = 0.044715;

// erfc(a) for a >= 0 with relative error < 1.2e-7 everywhere (Chebyshev fit, Numerical Recipes
// "erfcc"), so the GELU tails keep their relative accuracy where 1 + erf(z) would cancel.
fn erfcPos(a: f32) -> f32 {
  let t = 1.0 / (1.0 + 0.5 * a);
  let r = -a * a - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
          t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  return t * exp(r);
}

// sigma(z)(1 - sigma(z)) = e / (1 + e)^2 with e = exp(-|z|): no cancellation, no overflow.
fn sigmoidGrad(z: f32) -> f32 {
  let e = exp(-abs(z));
  let d = 1.0 + e;
  return e / (d * d);
}

fn grad(v: f32) -> f32 {
  switch OP {
    case 0u: { return select(0.0, 1.0, v > 0.0); }
    case 1u: {
      // Phi(v) = erfc(-v / sqrt2) / 2, computed from the tail side to avoid 1 - 1 cancellation.
      let q = 0.5 * erfcPos(abs(v) * INV_SQRT2);
      let cdf = select(1.0 - q, q, v < 0.0);
      return cdf + v * INV_SQRT_2PI * exp(-0.5 * v * v);
    }
    case 2u: {
      // 0.5 (1 + tanh u) = sigma(2u); 1 - tanh(u)^2 = 4 sigma(2u)(1 - sigma(2u)).
      let u = GELU_K * (v + GELU_C * v * v * v);
      let e = exp(-abs(2.0 * u));
      let s = select(e / (1.0 + e), 1.0 / (1.0 + e), u >= 0.0);
      let sech2 = 4.0 * e / ((1.0 + e) * (1.0 + e));
      return s + 0.5 * v * sech2 * GELU_K * (1.0 + 3.0 * GELU_C * v * v);
    }
    case 3u: { return 4.0 * sigmoidGrad(2.0 * v); }
    default: { return sigmoidGrad(v); }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  dx[i] = dy[i] * grad(x[i]);
}
