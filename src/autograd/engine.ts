// Reverse-mode autograd: apply() records primitives on a tape, backward() replays it in reverse with `+=`.
import { GraftError, ShapeError } from '../runtime/errors.js';
import { Tensor, keep, setBackwardImpl, type GradFn, type Shape } from '../tensor.js';
import { fill, binary } from '../kernels/elementwise.js';
import { accumulateInto, clone, isExclusive } from './accumulate.js';
import { isGradEnabled } from './grad-mode.js';
import { RULES, type PrimTable, type Primitive } from './registry.js';
import type { BackwardCtx, ForwardCtx } from './rule.js';

/** Where an input's gradient goes: an output of another node, a leaf's `.grad`, or nowhere. */
type Edge = { node: Node; index: number } | { leaf: Tensor } | null;

type RunBackward = (ctx: BackwardCtx, grads: readonly Tensor[]) => (Tensor | null)[];

/** Tensors a node saved: freed after its backward, or when the node is garbage-collected unused. */
const orphanSaved = new FinalizationRegistry<Tensor[]>((saved) => {
  for (const t of saved) t.dispose();
});

/** One recorded primitive application. */
export class Node {
  private static nextSeq = 1;
  /** Creation order: a node's inputs were all created before it. */
  readonly seq = Node.nextSeq++;
  released = false;

  constructor(
    readonly name: string,
    public edges: Edge[],
    readonly inputShapes: Shape[],
    readonly outputShapes: Shape[],
    private saved: Tensor[],
    private run: RunBackward | null,
  ) {
    orphanSaved.register(this, saved, this);
  }

  /** Call the rule's backward (throws if the graph was already freed). */
  backward(grads: readonly Tensor[]): (Tensor | null)[] {
    if (!this.run || this.released) {
      throw new GraftError(
        `backward through '${this.name}' a second time: its saved tensors were freed after the first backward (pass { retainGraph: true } to keep them)`,
      );
    }
    const needs = this.edges.map((e) => e !== null);
    return this.run({ needs }, grads);
  }

  /** Free saved tensors and drop references to the rest of the graph. */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const t of this.saved) t.dispose();
    this.saved.length = 0;
    orphanSaved.unregister(this);
    this.run = null;
    this.edges = [];
  }
}

/** What `tensor.gradFn` holds for a recorded output: its node and output index. */
export class GradRef implements GradFn {
  constructor(
    readonly node: Node,
    readonly index: number,
  ) {}
  get name(): string {
    return this.node.name;
  }
}

function edgeOf(t: Tensor): Edge {
  if (t.gradFn instanceof GradRef) return { node: t.gradFn.node, index: t.gradFn.index };
  if (t.gradFn) throw new GraftError(`${t}: gradFn '${t.gradFn.name}' was not made by graft's autograd`);
  return t.requiresGrad ? { leaf: t } : null;
}

/**
 * Run primitive `prim` on `inputs`. When grad mode is on and any input requires grad, a node
 * is recorded and the outputs get `gradFn` / `requiresGrad`; otherwise nothing is kept.
 */
export function apply<P extends Primitive>(prim: P, inputs: readonly Tensor[], params: PrimTable[P]['params']): Tensor[] {
  const rule = RULES[prim];
  const recording = isGradEnabled() && inputs.some((t) => t.requiresGrad);
  const edges = recording ? inputs.map(edgeOf) : [];
  const saved: Tensor[] = [];
  const ctx: ForwardCtx = {
    recording,
    needs: inputs.map((_, i) => edges[i] != null),
    save(t) {
      if (!recording) return t;
      const v = keep(t.reshape(t.shape));
      saved.push(v);
      return v;
    },
    own(t) {
      saved.push(keep(t));
      return t;
    },
  };
  let r;
  try {
    r = rule.forward(ctx, inputs, params);
  } catch (e) {
    for (const t of saved) t.dispose();
    throw e;
  }
  for (const y of r.out) if (inputs.includes(y)) throw new GraftError(`rule '${prim}' returned an input tensor as its output`);
  if (!recording) {
    for (const t of saved) t.dispose();
    return r.out;
  }
  const rs = r.saved;
  const node = new Node(
    prim,
    edges,
    inputs.map((t) => t.shape),
    r.out.map((t) => t.shape),
    saved,
    (bctx, grads) => rule.backward(bctx, grads, rs, params),
  );
  r.out.forEach((y, i) => {
    y.gradFn = new GradRef(node, i);
    y.requiresGrad = true;
  });
  return r.out;
}

/** `apply` for single-output primitives. */
export function apply1<P extends Primitive>(prim: P, inputs: readonly Tensor[], params: PrimTable[P]['params']): Tensor {
  const out = apply(prim, inputs, params);
  if (out.length !== 1) throw new GraftError(`primitive '${prim}' has ${out.length} outputs, expected 1`);
  return out[0]!;
}

export interface BackwardOptions {
  /** Keep saved tensors so backward can run through this graph again (default false). */
  retainGraph?: boolean;
}

const sameShape = (a: Shape, b: Shape): boolean => a.length === b.length && a.every((d, i) => d === b[i]);
const fmt = (s: Shape): string => `[${s.join(', ')}]`;

/** Nodes reachable from `root`, inputs before users (iterative post-order DFS). */
function topoOrder(root: Node): Node[] {
  const order: Node[] = [];
  const seen = new Set<Node>([root]);
  const stack: { node: Node; next: number }[] = [{ node: root, next: 0 }];
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const e = top.node.edges[top.next++];
    if (top.next > top.node.edges.length) {
      stack.pop();
      order.push(top.node);
    } else if (e && 'node' in e && !seen.has(e.node)) {
      seen.add(e.node);
      stack.push({ node: e.node, next: 0 });
    }
  }
  return order;
}

/** Add gradient `g` (engine-owned) into a leaf's `.grad`: in place when one exists, else adopt `g`. */
function toLeaf(leaf: Tensor, g: Tensor): void {
  const cur = leaf.grad;
  if (cur && !cur.disposed) {
    if (!sameShape(cur.shape, leaf.shape)) throw new ShapeError(`backward: ${leaf}.grad has shape ${fmt(cur.shape)}, expected ${fmt(leaf.shape)}`);
    accumulateInto(cur, g);
    g.dispose();
    return;
  }
  if (isExclusive(g)) leaf.grad = keep(g);
  else {
    leaf.grad = keep(clone(g));
    g.dispose();
  }
}

/** `g` with `shape`, consuming `g` (a view that keeps the storage alive). */
function reshapeOwned(g: Tensor, shape: Shape): Tensor {
  const v = g.reshape(shape);
  g.dispose();
  return v;
}

/**
 * Back-propagate from `root`: every leaf that requires grad and contributes to `root` gets
 * `.grad += d root / d leaf · gradOutput`. `gradOutput` defaults to 1 for a one-element root.
 * Intermediate gradients are freed once consumed, saved tensors once their node has run
 * (unless `retainGraph`).
 */
export function backward(root: Tensor, gradOutput?: Tensor, opts: BackwardOptions = {}): void {
  const rt = root.rt;
  if (!root.requiresGrad) throw new GraftError(`backward: ${root} does not require grad and has no grad_fn`);
  if (gradOutput && !sameShape(gradOutput.shape, root.shape) && gradOutput.size !== root.size) {
    throw new ShapeError(`backward: gradOutput ${fmt(gradOutput.shape)} does not match output ${fmt(root.shape)}`);
  }
  if (!gradOutput && root.size !== 1) {
    throw new GraftError(`backward: gradOutput can be omitted only for one-element outputs, got ${fmt(root.shape)}`);
  }
  // Engine-owned seed: a view of the caller's tensor (never written in place) or fresh ones.
  const seed = gradOutput ? gradOutput.reshape(root.shape) : fill(rt, root.shape, 1);
  const ref = root.gradFn;
  if (!(ref instanceof GradRef)) {
    toLeaf(root, seed);
    return;
  }
  const grads = new Map<Node, (Tensor | null)[]>();
  grads.set(ref.node, ref.node.outputShapes.map((_, i) => (i === ref.index ? seed : null)));
  const order = topoOrder(ref.node);
  try {
    for (let k = order.length - 1; k >= 0; k--) {
      const node = order[k]!;
      const gs = grads.get(node);
      grads.delete(node);
      if (!gs) {
        if (!opts.retainGraph) node.release();
        continue;
      }
      runNode(node, gs, grads, rt);
      if (!opts.retainGraph) node.release();
    }
  } finally {
    for (const gs of grads.values()) for (const g of gs) g?.dispose();
  }
}

function runNode(node: Node, gs: (Tensor | null)[], grads: Map<Node, (Tensor | null)[]>, rt: Tensor['rt']): void {
  const full = gs.map((g, i) => g ?? Tensor.zeros(rt, node.outputShapes[i]!));
  let outs: (Tensor | null)[];
  try {
    outs = node.backward(full);
  } catch (e) {
    for (const g of full) g.dispose();
    throw e;
  }
  // Each returned gradient becomes its own engine-owned tensor; incoming ones not passed on are freed.
  const handed = new Set<Tensor>();
  const routed = outs.map((g) => {
    if (!g) return null;
    if (handed.has(g)) return g.reshape(g.shape);
    handed.add(g);
    return g;
  });
  for (const g of full) if (!handed.has(g)) g.dispose();
  node.edges.forEach((e, i) => {
    let g = routed[i];
    if (!g) return;
    if (!e) {
      g.dispose();
      return;
    }
    const want = node.inputShapes[i]!;
    if (!sameShape(g.shape, want)) {
      if (g.size !== numelOf(want)) {
        g.dispose();
        throw new ShapeError(`backward of '${node.name}': gradient ${fmt(g.shape)} for input ${i} of shape ${fmt(want)}`);
      }
      g = reshapeOwned(g, want);
    }
    if ('leaf' in e) {
      toLeaf(e.leaf, g);
      return;
    }
    let slot = grads.get(e.node);
    if (!slot) grads.set(e.node, (slot = e.node.outputShapes.map(() => null)));
    const cur = slot[e.index];
    if (!cur) slot[e.index] = g;
    else if (isExclusive(cur)) {
      accumulateInto(cur, g);
      g.dispose();
    } else {
      slot[e.index] = binary(cur, g, 'add');
      cur.dispose();
      g.dispose();
    }
  });
  for (let i = node.edges.length; i < routed.length; i++) routed[i]?.dispose();
}

const numelOf = (s: Shape): number => s.reduce((a, b) => a * b, 1);

/** A tensor sharing `t`'s data that is cut from the graph (no gradFn, requiresGrad false). */
export function detach(t: Tensor): Tensor {
  return t.reshape(t.shape);
}

/**
 * Free the saved tensors of every node behind `t` without running backward (e.g. a forward
 * whose loss is not needed). Also happens when such a graph is garbage-collected.
 */
export function freeGraph(t: Tensor): void {
  if (!(t.gradFn instanceof GradRef)) return;
  for (const n of topoOrder(t.gradFn.node)) n.release();
}

setBackwardImpl(backward);
