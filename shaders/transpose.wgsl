// Strided copy of 4-byte elements (transpose / slice / concat): for each e < n with box coordinates c (dims d0..d5,
// innermost first), y[obase + Σ c_k·os_k] = x[ibase + Σ c_k·is_k]. OUT_CONTIG: y offset is obase + e (no index math).
// INNER4 (d0 % 4 == 0): each invocation moves 4 consecutive elements along d0 with one index computation.
struct Params {
  n: u32, ibase: u32, obase: u32,
  d0: u32, d1: u32, d2: u32, d3: u32, d4: u32, d5: u32,
  is0: u32, is1: u32, is2: u32, is3: u32, is4: u32, is5: u32,
  os0: u32, os1: u32, os2: u32, os3: u32, os4: u32, os5: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<u32>;

override RANK: u32 = 1u;        // box dims in use (1..6)
override OUT_CONTIG: bool = true;
override INNER4: bool = false;

// Offsets of box element e in x (.x) and y (.y).
fn offsets(e: u32) -> vec2u {
  var r = e;
  var o = vec2u(p.ibase, p.obase);
  if (RANK > 0u) { let c = select(r % p.d0, r, RANK == 1u); r = r / p.d0; o += c * vec2u(p.is0, p.os0); }
  if (RANK > 1u) { let c = select(r % p.d1, r, RANK == 2u); r = r / p.d1; o += c * vec2u(p.is1, p.os1); }
  if (RANK > 2u) { let c = select(r % p.d2, r, RANK == 3u); r = r / p.d2; o += c * vec2u(p.is2, p.os2); }
  if (RANK > 3u) { let c = select(r % p.d3, r, RANK == 4u); r = r / p.d3; o += c * vec2u(p.is3, p.os3); }
  if (RANK > 4u) { let c = select(r % p.d4, r, RANK == 5u); r = r / p.d4; o += c * vec2u(p.is4, p.os4); }
  if (RANK > 5u) { o += r * vec2u(p.is5, p.os5); }
  return o;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = gid.x + gid.y * nwg.x * 256u;
  if (INNER4) {
    let e = 4u * t;
    if (e >= p.n) { return; }
    let o = offsets(e);
    for (var c = 0u; c < 4u; c++) {
      if (OUT_CONTIG) {
        y[p.obase + e + c] = x[o.x + c * p.is0];
      } else {
        y[o.y + c * p.os0] = x[o.x + c * p.is0];
      }
    }
    return;
  }
  if (t >= p.n) { return; }
  let o = offsets(t);
  if (OUT_CONTIG) {
    y[p.obase + t] = x[o.x];
  } else {
    y[o.y] = x[o.x];
  }
}
