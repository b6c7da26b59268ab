// The TensorFlow.js WebGPU peer for benchmarks. It lives in src/bench/tfjs.ts so `graft bench --peer tfjs` can bundle it.
export {
  loadTfjs,
  tfjsMatmul,
  tfjsConv2d,
  tfjsMatmulCase,
  tfjsConv2dCase,
  tfjsConvUnsupported,
  timePeer,
  type TfjsPeer,
  type PeerCase,
} from '../../src/bench/tfjs.js';
