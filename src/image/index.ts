// graft image input: decode PNG/JPEG, PIL-exact resize, center crop, per-model normalisation, NCHW batches.
export { decodeImage, readImage, sniffFormat, type RgbImage, type ImageFormat } from './decode.js';
export { resizeImage, resizeShorterSide, type ResizeFilter, type LongSideRounding } from './resize.js';
export { centerCrop, roundHalfEven } from './crop.js';
export { CAFFE, TORCHVISION, NORMALIZATIONS, normalization, normalizeToChw, type Normalization } from './normalize.js';
export {
  KERAS_CAFFE_PREPROCESS,
  TORCHVISION_PREPROCESS,
  resizeAndCrop,
  preprocessImage,
  preprocessBatch,
  loadImageBatch,
  type PreprocessOptions,
  type ImageBatch,
} from './preprocess.js';
