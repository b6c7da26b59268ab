// Grad mode: whether differentiable ops record a graph (PyTorch's no_grad / enable_grad).

let enabled = true;

/** True when ops on tensors that require grad record a graph for backward. */
export function isGradEnabled(): boolean {
  return enabled;
}

/** Turn recording on or off; returns the previous setting (for async code that cannot use noGrad). */
export function setGradEnabled(on: boolean): boolean {
  const prev = enabled;
  enabled = on;
  return prev;
}

function withMode<T>(on: boolean, fn: () => T): T {
  const prev = setGradEnabled(on);
  try {
    const r = fn();
    if (r instanceof Promise) throw new TypeError('noGrad/enableGrad take a synchronous function; use setGradEnabled around async code');
    return r;
  } finally {
    enabled = prev;
  }
}

/** Run `fn` without recording a graph (inference, optimizer updates). Synchronous functions only. */
export function noGrad<T>(fn: () => T): T {
  return withMode(false, fn);
}

/** Run `fn` with recording on, even inside noGrad. Synchronous functions only. */
export function enableGrad<T>(fn: () => T): T {
  return withMode(true, fn);
}
