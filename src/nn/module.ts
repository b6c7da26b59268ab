// nn.Module: parameters and buffers registered under their attribute names, state dicts, train/eval, freezing.
import { GraftError, ShapeError } from '../runtime/errors.js';
import { Tensor, keep } from '../tensor.js';
import { cast } from '../kernels/cast.js';
import { copyInto, zeroInto } from '../autograd/accumulate.js';
import { noGrad } from '../autograd/grad-mode.js';

/** A module that maps one tensor to one tensor (what Sequential chains). */
export interface Layer {
  forward(x: Tensor): Tensor;
}

export interface LoadResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

export type StateDictLike = Map<string, Tensor> | Iterable<readonly [string, Tensor]> | Record<string, Tensor>;

/** Keys loadStateDict accepts without a matching tensor (PyTorch bookkeeping graft does not keep). */
const IGNORED_KEY = /(^|\.)num_batches_tracked$/;

const fmt = (t: Tensor): string => `${t.dtype} [${t.shape.join(', ')}]`;

/**
 * Base class of every layer. Parameters and buffers are registered by name and read back from
 * the attribute of that name (so `m.weight = t` after registration replaces the parameter);
 * child modules are found by walking attributes that hold a Module (or an array of Modules,
 * named `attr.0`, `attr.1`, ... like torch's ModuleList). Keys follow PyTorch: `layer1.0.conv1.weight`.
 */
export abstract class Module {
  /** Training mode (dropout active, batch norm uses batch statistics). */
  training = true;
  private readonly paramNames: string[] = [];
  private readonly bufferNames: string[] = [];

  /** Register parameter `name` (sets requiresGrad, exempts it from scopes); returns it for the attribute. */
  protected registerParameter<T extends Tensor | null>(name: string, t: T): T {
    this.claim(name);
    this.paramNames.push(name);
    if (t) {
      t.requiresGrad = true;
      keep(t);
    }
    return t;
  }

  /** Register buffer `name` (state that is saved but not trained, e.g. running_mean). */
  protected registerBuffer<T extends Tensor | null>(name: string, t: T): T {
    this.claim(name);
    this.bufferNames.push(name);
    if (t) keep(t);
    return t;
  }

  private claim(name: string): void {
    if (!name || name.includes('.')) throw new GraftError(`${this.constructor.name}: invalid parameter/buffer name '${name}'`);
    if (this.paramNames.includes(name) || this.bufferNames.includes(name)) {
      throw new GraftError(`${this.constructor.name}: '${name}' is already registered`);
    }
  }

  private attr(name: string): Tensor | null {
    const v: unknown = Reflect.get(this, name);
    if (v === null || v === undefined) return null;
    if (!(v instanceof Tensor)) throw new GraftError(`${this.constructor.name}.${name} is registered as a tensor but holds ${String(v)}`);
    return v;
  }

  /** Direct children as [name, module], in attribute order. */
  namedChildren(): [string, Module][] {
    const out: [string, Module][] = [];
    for (const key of Object.keys(this)) {
      const v: unknown = Reflect.get(this, key);
      if (v instanceof Module) out.push([key, v]);
      else if (Array.isArray(v) && v.length > 0 && v.every((m) => m instanceof Module)) {
        v.forEach((m: Module, i) => out.push([`${key}.${i}`, m]));
      }
    }
    return out;
  }

  /** This module and every descendant as [dotted name, module] (this one named ''). */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [n, m] of this.namedChildren()) out.push(...m.namedModules(prefix ? `${prefix}.${n}` : n));
    return out;
  }

  /** Every parameter as [dotted name, tensor] (null parameters, e.g. bias=false, are skipped). */
  namedParameters(): [string, Tensor][] {
    return this.collect((m) => m.paramNames);
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  namedBuffers(): [string, Tensor][] {
    return this.collect((m) => m.bufferNames);
  }

  private collect(names: (m: Module) => string[]): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    for (const [prefix, m] of this.namedModules()) {
      for (const n of names(m)) {
        const t = m.attr(n);
        if (!t || seen.has(t)) continue;
        seen.add(t);
        out.push([prefix ? `${prefix}.${n}` : n, t]);
      }
    }
    return out;
  }

  /** Parameters and buffers by PyTorch key, each module's own first, then its children's (live tensors, not copies). */
  stateDict(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [prefix, m] of this.namedModules()) {
      for (const n of [...m.paramNames, ...m.bufferNames]) {
        const t = m.attr(n);
        if (t) out.set(prefix ? `${prefix}.${n}` : n, t);
      }
    }
    return out;
  }

  /**
   * Copy tensors into this module's parameters and buffers by key (tensor identity is kept, so
   * optimizers and arenas stay valid; f16 sources are cast). Shape mismatches always throw,
   * naming the key and both shapes; with `strict` (default) missing or unexpected keys throw too.
   * `num_batches_tracked` keys are accepted and ignored.
   */
  loadStateDict(dict: StateDictLike, opts: { strict?: boolean } = {}): LoadResult {
    const strict = opts.strict ?? true;
    const src = toMap(dict);
    const own = this.stateDict();
    const missingKeys = [...own.keys()].filter((k) => !src.has(k));
    const unexpectedKeys = [...src.keys()].filter((k) => !own.has(k) && !IGNORED_KEY.test(k));
    const problems: string[] = [];
    for (const [k, dst] of own) {
      const s = src.get(k);
      if (!s) continue;
      const same = s.rank === dst.rank && s.shape.every((d, i) => d === dst.shape[i]);
      if (!same) problems.push(`  ${k}: checkpoint has [${s.shape.join(', ')}], module has [${dst.shape.join(', ')}]`);
      else if ((s.dtype === 'i32') !== (dst.dtype === 'i32')) problems.push(`  ${k}: checkpoint is ${fmt(s)}, module is ${fmt(dst)}`);
    }
    if (problems.length) throw new ShapeError(`loadStateDict: shape mismatch for ${problems.length} tensor(s):\n${problems.join('\n')}`);
    if (strict && (missingKeys.length || unexpectedKeys.length)) {
      const list = (title: string, ks: string[]) => (ks.length ? `\n  ${title} (${ks.length}): ${ks.join(', ')}` : '');
      throw new GraftError(`loadStateDict (strict): keys do not match${list('missing', missingKeys)}${list('unexpected', unexpectedKeys)}`);
    }
    noGrad(() => {
      for (const [k, dst] of own) {
        const s = src.get(k);
        if (!s) continue;
        if (s.dtype === dst.dtype) copyInto(dst, s);
        else {
          const c = cast(s, dst.dtype);
          copyInto(dst, c);
          c.dispose();
        }
      }
    });
    return { missingKeys, unexpectedKeys };
  }

  /** Set training mode on this module and every descendant. */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /**
   * Stop gradients for parameters whose name matches `pattern`: a RegExp (tested against the
   * name), or a glob where `*` is any run of characters (dots included) and `?` one character; a
   * glob also matches every parameter under a module path it matches ('layer1' = 'layer1.*').
   * Throws if nothing matches (a typo would otherwise freeze nothing). Returns this.
   */
  freeze(pattern: string | RegExp): this {
    return this.setRequiresGrad(pattern, false, 'freeze');
  }

  /** The inverse of freeze. */
  unfreeze(pattern: string | RegExp): this {
    return this.setRequiresGrad(pattern, true, 'unfreeze');
  }

  private setRequiresGrad(pattern: string | RegExp, on: boolean, op: string): this {
    const test = matcher(pattern);
    let n = 0;
    for (const [name, t] of this.namedParameters()) {
      if (!test(name)) continue;
      t.requiresGrad = on;
      n++;
    }
    if (!n) throw new GraftError(`${op}: no parameter name matches ${String(pattern)}`);
    return this;
  }

  /** Drop gradients (setToNone, default) or zero them in place (keeps pre-assigned grad tensors). */
  zeroGrad(setToNone = true): void {
    for (const t of this.parameters()) {
      if (!t.grad) continue;
      if (setToNone) {
        t.grad.dispose();
        t.grad = null;
      } else zeroInto(t.grad);
    }
  }

  /** Free every parameter, gradient and buffer. */
  dispose(): void {
    for (const t of this.parameters()) {
      t.grad?.dispose();
      t.grad = null;
      t.dispose();
    }
    for (const [, t] of this.namedBuffers()) t.dispose();
  }
}

function toMap(d: StateDictLike): Map<string, Tensor> {
  if (d instanceof Map) return d;
  if (Symbol.iterator in d) return new Map(d);
  return new Map(Object.entries(d));
}

/** Glob (`*`, `?`, module-path prefixes) or RegExp test on a parameter name. */
export function matcher(pattern: string | RegExp): (name: string) => boolean {
  if (pattern instanceof RegExp) return (name) => new RegExp(pattern.source, pattern.flags.replace('g', '')).test(name);
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  const re = new RegExp(`^${body}(\\..*)?$`);
  return (name) => re.test(name);
}
