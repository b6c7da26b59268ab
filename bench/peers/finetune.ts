// The fine-tune benchmark's peers (tfjs-webgpu, PyTorch CPU). They live in src/bench/peers/ so `graft bench finetune` can bundle them.
export {
  FINETUNE_PEERS,
  runPeers,
  tfjsFinetuneStep,
  runTfjsFinetune,
  runTorchFinetune,
  torchAvailable,
  torchPython,
  BERT_SIZES,
  bertSize,
  type FinetunePeer,
  type BertSize,
  type PeerTrainStep,
} from '../../src/bench/peers/index.js';
