// Huffman JPEG decoder (sequential and progressive) that reproduces libjpeg-turbo's default output, hence PIL's, bit for bit.
//
// libjpeg's defaults: the "islow" integer IDCT (jidctint.c: 13-bit constants, 2 extra bits after pass 1,
// range-limit table), "fancy" triangle upsampling of 2×1 / 2×2 subsampled chroma (jdsample.c, edge rows and
// columns replicated), and fixed-point YCbCr -> RGB (jdcolor.c). Coefficients of all scans are gathered first
// (progressive spectral selection / successive approximation as in jdphuff.c), then dequantised and transformed.
// Arithmetic-coded, 12-bit, CMYK/YCCK and other subsampling layouts return null so the caller can fall back.
import type { RgbImage } from './decode.js';

/** Zig-zag index k -> natural (row-major) index in the 8×8 block. */
const ZIGZAG = Int32Array.from([
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
  35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
]);

/** Corrupt or truncated JPEG data. */
export class JpegError extends Error {}

interface Huffman {
  /** Per code length 1..16: largest code (-1 if none), first code, index of its first value. */
  maxcode: Int32Array;
  mincode: Int32Array;
  valptr: Int32Array;
  values: Uint8Array;
}

function buildHuffman(counts: Uint8Array, values: Uint8Array): Huffman {
  const maxcode = new Int32Array(18).fill(-1);
  const mincode = new Int32Array(17);
  const valptr = new Int32Array(17);
  let code = 0;
  let k = 0;
  for (let len = 1; len <= 16; len++) {
    const n = counts[len - 1]!;
    if (n) {
      valptr[len] = k;
      mincode[len] = code;
      code += n;
      k += n;
      maxcode[len] = code - 1;
    }
    if (code > 1 << len) throw new JpegError('bad Huffman table');
    code <<= 1;
  }
  maxcode[17] = 0x7fffffff; // sentinel
  return { maxcode, mincode, valptr, values };
}

interface Component {
  id: number;
  h: number;
  v: number;
  tq: number;
  /** The quantisation table latched at the component's first scan (natural order). */
  q: Float64Array | null;
  /** Blocks per line / column of the MCU-padded plane. */
  bpl: number;
  bpc: number;
  /** Quantised coefficients, 64 per block (natural order), blocks row-major: [bpc, bpl, 64]. */
  coef: Int32Array;
  dc: Huffman | null;
  ac: Huffman | null;
  pred: number;
}

/** libjpeg's post-IDCT range-limit table: idctLimit[x & 1023] = clamp(x + 128) for |x| < 512 (wraps beyond). */
const IDCT_LIMIT = (() => {
  const t = new Uint8Array(1024);
  for (let x = 0; x < 1024; x++) {
    if (x < 128) t[x] = x + 128;
    else if (x < 512) t[x] = 255;
    else if (x < 896) t[x] = 0;
    else t[x] = x - 896;
  }
  return t;
})();

const CONST_BITS = 13;
const PASS1_BITS = 2;
const F0298 = 2446, F0390 = 3196, F0541 = 4433, F0765 = 6270, F0899 = 7373, F1175 = 9633;
const F1501 = 12299, F1847 = 15137, F1961 = 16069, F2053 = 16819, F2562 = 20995, F3072 = 25172;

/** RIGHT_SHIFT(x + 2^(n-1), n) on exact integers held in doubles (libjpeg uses 64-bit JLONG). */
const descale = (x: number, n: number): number => Math.floor((x + 2 ** (n - 1)) / 2 ** n);

/** jpeg_idct_islow: coef (natural order, already dequantised) -> 8×8 samples at out[off + r·stride + c]. */
function idctIslow(coef: Float64Array, ws: Float64Array, out: Uint8Array, off: number, stride: number): void {
  // Pass 1: columns -> work array (scaled up by 2^PASS1_BITS).
  for (let c = 0; c < 8; c++) {
    const z2a = coef[16 + c]!;
    const z3a = coef[48 + c]!;
    const z1 = (z2a + z3a) * F0541;
    const tmp2e = z1 - z3a * F1847;
    const tmp3e = z1 + z2a * F0765;
    const tmp0e = (coef[c]! + coef[32 + c]!) * 2 ** CONST_BITS;
    const tmp1e = (coef[c]! - coef[32 + c]!) * 2 ** CONST_BITS;
    const t10 = tmp0e + tmp3e;
    const t13 = tmp0e - tmp3e;
    const t11 = tmp1e + tmp2e;
    const t12 = tmp1e - tmp2e;
    const [o0, o1, o2, o3] = odd(coef[56 + c]!, coef[40 + c]!, coef[24 + c]!, coef[8 + c]!);
    const n = CONST_BITS - PASS1_BITS;
    ws[c] = descale(t10 + o3, n);
    ws[56 + c] = descale(t10 - o3, n);
    ws[8 + c] = descale(t11 + o2, n);
    ws[48 + c] = descale(t11 - o2, n);
    ws[16 + c] = descale(t12 + o1, n);
    ws[40 + c] = descale(t12 - o1, n);
    ws[24 + c] = descale(t13 + o0, n);
    ws[32 + c] = descale(t13 - o0, n);
  }
  // Pass 2: rows -> samples.
  for (let r = 0; r < 8; r++) {
    const w = r * 8;
    const z1 = (ws[w + 2]! + ws[w + 6]!) * F0541;
    const tmp2e = z1 - ws[w + 6]! * F1847;
    const tmp3e = z1 + ws[w + 2]! * F0765;
    const tmp0e = (ws[w]! + ws[w + 4]!) * 2 ** CONST_BITS;
    const tmp1e = (ws[w]! - ws[w + 4]!) * 2 ** CONST_BITS;
    const t10 = tmp0e + tmp3e;
    const t13 = tmp0e - tmp3e;
    const t11 = tmp1e + tmp2e;
    const t12 = tmp1e - tmp2e;
    const [o0, o1, o2, o3] = odd(ws[w + 7]!, ws[w + 5]!, ws[w + 3]!, ws[w + 1]!);
    const n = CONST_BITS + PASS1_BITS + 3;
    const o = off + r * stride;
    out[o] = IDCT_LIMIT[descale(t10 + o3, n) & 1023]!;
    out[o + 7] = IDCT_LIMIT[descale(t10 - o3, n) & 1023]!;
    out[o + 1] = IDCT_LIMIT[descale(t11 + o2, n) & 1023]!;
    out[o + 6] = IDCT_LIMIT[descale(t11 - o2, n) & 1023]!;
    out[o + 2] = IDCT_LIMIT[descale(t12 + o1, n) & 1023]!;
    out[o + 5] = IDCT_LIMIT[descale(t12 - o1, n) & 1023]!;
    out[o + 3] = IDCT_LIMIT[descale(t13 + o0, n) & 1023]!;
    out[o + 4] = IDCT_LIMIT[descale(t13 - o0, n) & 1023]!;
  }
}

/** The odd part of the islow IDCT for inputs y7, y5, y3, y1 -> tmp0..tmp3. */
function odd(a0: number, a1: number, a2: number, a3: number): [number, number, number, number] {
  const z1 = (a0 + a3) * -F0899;
  const z2 = (a1 + a2) * -F2562;
  const z5 = (a0 + a2 + a1 + a3) * F1175;
  const z3 = (a0 + a2) * -F1961 + z5;
  const z4 = (a1 + a3) * -F0390 + z5;
  return [a0 * F0298 + z1 + z3, a1 * F2053 + z2 + z4, a2 * F3072 + z2 + z3, a3 * F1501 + z1 + z4];
}

/** Entropy-coded segment reader: byte stuffing, markers, restarts. */
class Bits {
  private buf = 0;
  private n = 0;
  /** A marker was met: further bits read as 0 (libjpeg's behaviour). */
  private atMarker = false;
  constructor(
    private readonly d: Uint8Array,
    public pos: number,
  ) {}

  bit(): number {
    if (this.n === 0) {
      let b = 0;
      if (!this.atMarker) {
        if (this.pos >= this.d.length) throw new JpegError('data ends inside a scan (truncated file)');
        b = this.d[this.pos]!;
        if (b === 0xff) {
          const next = this.d[this.pos + 1];
          if (next === undefined) throw new JpegError('data ends inside a scan (truncated file)');
          if (next === 0) this.pos += 2;
          else {
            this.atMarker = true;
            b = 0;
          }
        } else this.pos++;
      }
      this.buf = b;
      this.n = 8;
    }
    this.n--;
    return (this.buf >> this.n) & 1;
  }

  bits(count: number): number {
    let v = 0;
    for (let i = 0; i < count; i++) v = (v << 1) | this.bit();
    return v;
  }

  decode(h: Huffman): number {
    let code = this.bit();
    let len = 1;
    while (code > h.maxcode[len]!) {
      code = (code << 1) | this.bit();
      if (++len > 16) throw new JpegError('bad Huffman code');
    }
    return h.values[h.valptr[len]! + code - h.mincode[len]!]!;
  }

  /** Value of an s-bit magnitude category (JPEG's EXTEND). */
  receiveExtend(s: number): number {
    if (s === 0) return 0;
    const v = this.bits(s);
    return v < 1 << (s - 1) ? v - (1 << s) + 1 : v;
  }

  /** Skip to and past the next RSTn marker, dropping buffered bits. */
  restart(): void {
    this.n = 0;
    this.atMarker = false;
    while (this.pos + 1 < this.d.length && !(this.d[this.pos] === 0xff && this.d[this.pos + 1]! >= 0xd0 && this.d[this.pos + 1]! <= 0xd7)) this.pos++;
    if (this.pos + 1 >= this.d.length) throw new JpegError('missing restart marker');
    this.pos += 2;
  }

  /** Position of the marker that ends the scan. */
  end(): number {
    let p = this.pos;
    while (p + 1 < this.d.length && !(this.d[p] === 0xff && this.d[p + 1] !== 0 && !(this.d[p + 1]! >= 0xd0 && this.d[p + 1]! <= 0xd7))) p++;
    return p;
  }
}

/**
 * Decode a sequential Huffman JPEG exactly as libjpeg-turbo's defaults do. Returns null for files this
 * decoder does not handle (progressive, arithmetic, 12-bit, not 1 or 3 components, Adobe-transformed,
 * subsampling other than 1×1 / 2×1 / 2×2); throws on corrupt data.
 */
export function decodeJpegExact(d: Uint8Array): RgbImage | null {
  if (d[0] !== 0xff || d[1] !== 0xd8) throw new JpegError('missing SOI marker');
  const qt: (Float64Array | null)[] = [null, null, null, null];
  const dcT: (Huffman | null)[] = [null, null, null, null];
  const acT: (Huffman | null)[] = [null, null, null, null];
  let restartInterval = 0;
  let width = 0;
  let height = 0;
  let comps: Component[] = [];
  let hmax = 1;
  let vmax = 1;
  let mcusX = 0;
  let mcusY = 0;
  /** Adobe APP14 transform flag (null: no Adobe marker) and whether a JFIF APP0 marker was seen. */
  let adobe: number | null = null;
  let jfif = false;
  let rgb = false;
  let sawFrame = false;
  let sawScan = false;
  let progressive = false;
  let p = 2;
  const u16 = (i: number) => (d[i]! << 8) | d[i + 1]!;
  for (;;) {
    if (p + 1 >= d.length) throw new JpegError('missing EOI marker (truncated file)');
    if (d[p] !== 0xff) throw new JpegError(`expected a marker at byte ${p}`);
    const m = d[p + 1]!;
    if (m === 0xff) {
      p++;
      continue;
    }
    if (m === 0xd9) break;
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd7)) {
      p += 2;
      continue;
    }
    if (p + 3 >= d.length) throw new JpegError('truncated marker');
    const len = u16(p + 2);
    const s = p + 4;
    const e = p + 2 + len;
    if (len < 2 || e > d.length) throw new JpegError(`marker 0x${m.toString(16)} runs past the end of the file`);
    if (m === 0xdb) {
      for (let q = s; q < e; ) {
        const pq = d[q]! >> 4;
        const tq = d[q]! & 15;
        if (tq > 3 || pq > 1) throw new JpegError('bad quantisation table');
        const t = new Float64Array(64);
        for (let k = 0; k < 64; k++) t[ZIGZAG[k]!] = pq ? u16(q + 1 + 2 * k) : d[q + 1 + k]!;
        qt[tq] = t;
        q += 1 + 64 * (pq + 1);
      }
    } else if (m === 0xc4) {
      for (let q = s; q < e; ) {
        const tc = d[q]! >> 4;
        const th = d[q]! & 15;
        if (tc > 1 || th > 3) throw new JpegError('bad Huffman table');
        const counts = d.subarray(q + 1, q + 17);
        const n = counts.reduce((a, b) => a + b, 0);
        const h = buildHuffman(counts, d.slice(q + 17, q + 17 + n));
        (tc ? acT : dcT)[th] = h;
        q += 17 + n;
      }
    } else if (m === 0xdd) restartInterval = u16(s);
    else if (m === 0xee) {
      if (len >= 14 && String.fromCharCode(...d.subarray(s, s + 5)) === 'Adobe') adobe = d[s + 11]!;
    } else if (m === 0xe0) {
      if (len >= 7 && String.fromCharCode(...d.subarray(s, s + 5)) === 'JFIF\0') jfif = true;
    } else if (m === 0xc0 || m === 0xc1 || m === 0xc2) {
      if (sawFrame) throw new JpegError('more than one frame');
      sawFrame = true;
      progressive = m === 0xc2;
      if (d[s] !== 8) return null;
      height = u16(s + 1);
      width = u16(s + 3);
      const nf = d[s + 5]!;
      if (height === 0 || width === 0 || (nf !== 1 && nf !== 3)) return null;
      comps = [];
      for (let i = 0; i < nf; i++) {
        const o = s + 6 + 3 * i;
        comps.push({ id: d[o]!, h: d[o + 1]! >> 4, v: d[o + 1]! & 15, tq: d[o + 2]!, q: null, bpl: 0, bpc: 0, coef: new Int32Array(0), dc: null, ac: null, pred: 0 });
      }
      // libjpeg's colour-space guess for 3 components: Adobe transform 0 or ids 'R','G','B' (no JFIF) mean RGB.
      if (nf === 3) {
        if (adobe !== null) {
          if (adobe === 0) rgb = true;
          else if (adobe !== 1) return null;
        } else if (!jfif && comps[0]!.id === 82 && comps[1]!.id === 71 && comps[2]!.id === 66) rgb = true;
      }
      hmax = Math.max(...comps.map((c) => c.h));
      vmax = Math.max(...comps.map((c) => c.v));
      for (const c of comps) {
        const fx = hmax / c.h;
        const fy = vmax / c.v;
        if (c.h < 1 || c.v < 1 || !((fx === 1 && fy === 1) || (fx === 2 && fy === 1) || (fx === 2 && fy === 2))) return null;
      }
      mcusX = Math.ceil(width / (8 * hmax));
      mcusY = Math.ceil(height / (8 * vmax));
      for (const c of comps) {
        c.bpl = mcusX * c.h;
        c.bpc = mcusY * c.v;
        c.coef = new Int32Array(c.bpl * c.bpc * 64);
      }
    } else if (m >= 0xc3 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) return null;
    else if (m === 0xda) {
      if (!sawFrame) throw new JpegError('scan before frame header');
      const ns = d[s]!;
      const ss = d[s + 1 + 2 * ns]!;
      const se = d[s + 2 + 2 * ns]!;
      const ah = d[s + 3 + 2 * ns]! >> 4;
      const al = d[s + 3 + 2 * ns]! & 15;
      const spec: ScanSpec = progressive ? { ss, se, ah, al } : { ss: 0, se: 63, ah: 0, al: 0 };
      if (progressive && (se > 63 || ss > se || (ss === 0 && se !== 0) || (ss > 0 && ns !== 1))) throw new JpegError('bad progressive scan parameters');
      const scan: Component[] = [];
      for (let i = 0; i < ns; i++) {
        const c = comps.find((x) => x.id === d[s + 1 + 2 * i]);
        if (!c) throw new JpegError('scan names an unknown component');
        const t = d[s + 2 + 2 * i]!;
        c.dc = dcT[t >> 4] ?? null;
        c.ac = acT[t & 15] ?? null;
        const needDc = spec.ss === 0 && spec.ah === 0;
        const needAc = spec.se > 0;
        if ((needDc && !c.dc) || (needAc && !c.ac)) throw new JpegError('scan uses an undefined Huffman table');
        c.q ??= qt[c.tq] ?? null;
        if (!c.q) throw new JpegError('component uses an undefined quantisation table');
        scan.push(c);
      }
      p = decodeScan(d, e, scan, spec, restartInterval, mcusX, mcusY, width, height, hmax, vmax);
      sawScan = true;
      continue;
    }
    p = e;
  }
  if (!sawFrame || !sawScan) throw new JpegError('no image data');
  return toRgb(comps.map(samples), comps, width, height, hmax, vmax, rgb);
}

/** Spectral selection [ss, se] and successive approximation (ah, al) of a scan (sequential: 0, 63, 0, 0). */
interface ScanSpec {
  ss: number;
  se: number;
  ah: number;
  al: number;
}

/** Decode one scan's entropy-coded data into the components' coefficients; returns the offset of the next marker. */
function decodeScan(
  d: Uint8Array,
  start: number,
  scan: Component[],
  spec: ScanSpec,
  restartInterval: number,
  mcusX: number,
  mcusY: number,
  width: number,
  height: number,
  hmax: number,
  vmax: number,
): number {
  const bits = new Bits(d, start);
  const { ss, se, ah, al } = spec;
  let eobrun = 0;
  for (const c of scan) c.pred = 0;
  const p1 = 1 << al;
  const m1 = -1 << al;

  // Per block decoders (b = offset of the block's 64 coefficients).
  const sequential = (c: Component, b: number) => {
    const co = c.coef;
    c.pred += bits.receiveExtend(bits.decode(c.dc!));
    co[b] = c.pred;
    for (let k = 1; k < 64; ) {
      const rs = bits.decode(c.ac!);
      const r = rs >> 4;
      const sz = rs & 15;
      if (sz === 0) {
        if (r !== 15) break;
        k += 16;
        continue;
      }
      k += r;
      if (k > 63) throw new JpegError('AC coefficient index out of range');
      co[b + ZIGZAG[k]!] = bits.receiveExtend(sz);
      k++;
    }
  };
  const dcFirst = (c: Component, b: number) => {
    c.pred += bits.receiveExtend(bits.decode(c.dc!));
    c.coef[b] = c.pred * 2 ** al;
  };
  const dcRefine = (c: Component, b: number) => {
    if (bits.bit()) c.coef[b] |= p1;
  };
  const acFirst = (c: Component, b: number) => {
    if (eobrun > 0) {
      eobrun--;
      return;
    }
    for (let k = ss; k <= se; k++) {
      const rs = bits.decode(c.ac!);
      const r = rs >> 4;
      const sz = rs & 15;
      if (sz) {
        k += r;
        if (k > 63) throw new JpegError('AC coefficient index out of range');
        c.coef[b + ZIGZAG[k]!] = bits.receiveExtend(sz) * 2 ** al;
      } else if (r === 15) k += 15;
      else {
        eobrun = (1 << r) - 1;
        if (r) eobrun += bits.bits(r);
        break;
      }
    }
  };
  const acRefine = (c: Component, b: number) => {
    const co = c.coef;
    const refine = (z: number) => {
      if (bits.bit() && (co[z]! & p1) === 0) co[z]! += co[z]! >= 0 ? p1 : m1;
    };
    let k = ss;
    if (eobrun <= 0) {
      for (; k <= se; k++) {
        const rs = bits.decode(c.ac!);
        let r = rs >> 4;
        let sv = 0;
        if (rs & 15) sv = bits.bit() ? p1 : m1;
        else if (r !== 15) {
          eobrun = 1 << r;
          if (r) eobrun += bits.bits(r);
          break;
        }
        // Skip r zero-history coefficients (refining the nonzero ones passed on the way).
        do {
          const z = b + ZIGZAG[k]!;
          if (co[z] !== 0) refine(z);
          else if (--r < 0) break;
          k++;
        } while (k <= se);
        if (sv) {
          if (k > 63) throw new JpegError('AC coefficient index out of range');
          co[b + ZIGZAG[k]!] = sv;
        }
      }
    }
    if (eobrun > 0) {
      for (; k <= se; k++) {
        const z = b + ZIGZAG[k]!;
        if (co[z] !== 0) refine(z);
      }
      eobrun--;
    }
  };
  const decodeBlock = ss === 0 ? (se === 0 ? (ah === 0 ? dcFirst : dcRefine) : sequential) : ah === 0 ? acFirst : acRefine;

  let units: number;
  let unit: (i: number) => void;
  if (scan.length === 1) {
    // Non-interleaved: the component's own block grid, covering its (rounded-up) sample size only.
    const c = scan[0]!;
    const bx = Math.ceil(Math.ceil((width * c.h) / hmax) / 8);
    const by = Math.ceil(Math.ceil((height * c.v) / vmax) / 8);
    units = bx * by;
    unit = (i) => decodeBlock(c, (Math.floor(i / bx) * c.bpl + (i % bx)) * 64);
  } else {
    units = mcusX * mcusY;
    unit = (i) => {
      const my = Math.floor(i / mcusX);
      const mx = i % mcusX;
      for (const c of scan) for (let v = 0; v < c.v; v++) for (let h = 0; h < c.h; h++) decodeBlock(c, ((my * c.v + v) * c.bpl + mx * c.h + h) * 64);
    };
  }
  for (let i = 0; i < units; i++) {
    if (restartInterval && i > 0 && i % restartInterval === 0) {
      bits.restart();
      for (const c of scan) c.pred = 0;
      eobrun = 0;
    }
    unit(i);
  }
  return bits.end();
}

/** Dequantise and inverse-transform every block: the component's sample plane [bpc·8, bpl·8]. */
function samples(c: Component): Uint8Array {
  const stride = c.bpl * 8;
  const out = new Uint8Array(stride * c.bpc * 8);
  const coef = new Float64Array(64);
  const ws = new Float64Array(64);
  const q = c.q ?? new Float64Array(64); // a component no scan covered: zero coefficients, mid-grey like libjpeg
  for (let by = 0; by < c.bpc; by++) {
    for (let bx = 0; bx < c.bpl; bx++) {
      const b = (by * c.bpl + bx) * 64;
      for (let i = 0; i < 64; i++) coef[i] = c.coef[b + i]! * q[i]!;
      idctIslow(coef, ws, out, by * 8 * stride + bx * 8, stride);
    }
  }
  return out;
}

/** libjpeg's h2v1 fancy upsampling of one row (in: n samples -> out: 2n). */
function h2v1Row(inp: Uint8Array, io: number, n: number, out: Uint8Array, oo: number): void {
  if (n === 1) {
    out[oo] = out[oo + 1] = inp[io]!;
    return;
  }
  let v = inp[io]!;
  out[oo] = v;
  out[oo + 1] = (v * 3 + inp[io + 1]! + 2) >> 2;
  for (let i = 1; i < n - 1; i++) {
    v = inp[io + i]! * 3;
    out[oo + 2 * i] = (v + inp[io + i - 1]! + 1) >> 2;
    out[oo + 2 * i + 1] = (v + inp[io + i + 1]! + 2) >> 2;
  }
  v = inp[io + n - 1]!;
  out[oo + 2 * n - 2] = (v * 3 + inp[io + n - 2]! + 1) >> 2;
  out[oo + 2 * n - 1] = v;
}

/** libjpeg's h2v2 fancy upsampling of one output row from the nearer (a) and farther (b) input rows. */
function h2v2Row(inp: Uint8Array, a: number, b: number, n: number, out: Uint8Array, oo: number): void {
  const col = (i: number) => inp[a + i]! * 3 + inp[b + i]!;
  if (n === 1) {
    const s = col(0);
    out[oo] = (s * 4 + 8) >> 4;
    out[oo + 1] = (s * 4 + 7) >> 4;
    return;
  }
  let last = col(0);
  let cur = last;
  let next = col(1);
  out[oo] = (cur * 4 + 8) >> 4;
  out[oo + 1] = (cur * 3 + next + 7) >> 4;
  for (let i = 1; i < n - 1; i++) {
    last = cur;
    cur = next;
    next = col(i + 1);
    out[oo + 2 * i] = (cur * 3 + last + 8) >> 4;
    out[oo + 2 * i + 1] = (cur * 3 + next + 7) >> 4;
  }
  last = cur;
  cur = next;
  out[oo + 2 * n - 2] = (cur * 3 + last + 8) >> 4;
  out[oo + 2 * n - 1] = (cur * 4 + 7) >> 4;
}

/** One component at full resolution [height, width] (fancy-upsampled when subsampled). */
function fullPlane(data: Uint8Array, c: Component, width: number, height: number, hmax: number, vmax: number): Uint8Array {
  const stride = c.bpl * 8;
  const dw = Math.ceil((width * c.h) / hmax);
  const dh = Math.ceil((height * c.v) / vmax);
  const out = new Uint8Array(width * height);
  const fx = hmax / c.h;
  const fy = vmax / c.v;
  const row = new Uint8Array(2 * dw);
  for (let y = 0; y < height; y++) {
    if (fx === 1) {
      out.set(data.subarray(y * stride, y * stride + width), y * width);
    } else if (fy === 1) {
      h2v1Row(data, y * stride, dw, row, 0);
      out.set(row.subarray(0, width), y * width);
    } else {
      const iy = y >> 1;
      // Row above the first and below the last real row: the edge row itself.
      const other = y & 1 ? Math.min(iy + 1, dh - 1) : Math.max(iy - 1, 0);
      h2v2Row(data, iy * stride, other * stride, dw, row, 0);
      out.set(row.subarray(0, width), y * width);
    }
  }
  return out;
}

/** libjpeg's ycc_rgb_convert tables (16-bit fixed point). */
const YCC = (() => {
  const FIX = (x: number) => Math.trunc(x * 65536 + 0.5);
  const half = 1 << 15;
  const crR = new Int32Array(256);
  const cbB = new Int32Array(256);
  const crG = new Int32Array(256);
  const cbG = new Int32Array(256);
  for (let i = 0; i < 256; i++) {
    const x = i - 128;
    crR[i] = (FIX(1.402) * x + half) >> 16;
    cbB[i] = (FIX(1.772) * x + half) >> 16;
    crG[i] = -FIX(0.71414) * x;
    cbG[i] = -FIX(0.34414) * x + half;
  }
  return { crR, cbB, crG, cbG };
})();

const clamp8 = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v);

/** In-place YCbCr -> RGB on interleaved [.., 3] data, exactly as libjpeg's ycc_rgb_convert. */
export function yccToRgbInPlace(px: Uint8Array): void {
  const { crR, cbB, crG, cbG } = YCC;
  for (let i = 0; i < px.length; i += 3) {
    const y = px[i]!;
    const cb = px[i + 1]!;
    const cr = px[i + 2]!;
    px[i] = clamp8(y + crR[cr]!);
    px[i + 1] = clamp8(y + ((cbG[cb]! + crG[cr]!) >> 16));
    px[i + 2] = clamp8(y + cbB[cb]!);
  }
}

function toRgb(sampled: Uint8Array[], comps: Component[], width: number, height: number, hmax: number, vmax: number, rgb: boolean): RgbImage {
  const planes = comps.map((c, i) => fullPlane(sampled[i]!, c, width, height, hmax, vmax));
  const n = width * height;
  const data = new Uint8Array(n * 3);
  if (planes.length === 1) {
    const g = planes[0]!;
    for (let i = 0; i < n; i++) data[3 * i] = data[3 * i + 1] = data[3 * i + 2] = g[i]!;
    return { width, height, data };
  }
  const [y, cb, cr] = planes as [Uint8Array, Uint8Array, Uint8Array];
  for (let i = 0; i < n; i++) {
    data[3 * i] = y[i]!;
    data[3 * i + 1] = cb[i]!;
    data[3 * i + 2] = cr[i]!;
  }
  if (!rgb) yccToRgbInPlace(data);
  return { width, height, data };
}
