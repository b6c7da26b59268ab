// Holds the host event loop open while a GPU promise is pending (dawn.node does not, so Node could exit mid-await).

let pending = 0;
let timer: ReturnType<typeof setInterval> | null = null;

/** Await a GPU-side promise without letting the process exit underneath it. */
export async function gpuAwait<T>(p: Promise<T>): Promise<T> {
  if (pending++ === 0) timer = setInterval(() => {}, 1000);
  try {
    return await p;
  } finally {
    if (--pending === 0 && timer !== null) {
      clearInterval(timer);
      timer = null;
    }
  }
}
