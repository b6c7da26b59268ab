// Progress bars for long CLI commands: label, count, rate, ETA on stderr; silent off a TTY or with --json.
import cliProgress from 'cli-progress';

export interface Progress {
  /** False when nothing is drawn (stderr is not a TTY, --json, or disabled). */
  readonly enabled: boolean;
  /** Set the number of finished steps (and optionally a new total). */
  update(done: number, total?: number): void;
  /** Add finished steps. */
  increment(steps?: number): void;
  /** Change the label shown before the bar. */
  label(text: string): void;
  /** Remove the bar from the terminal (call once, also on errors). */
  stop(): void;
}

export interface ProgressOptions {
  /** Total steps. */
  total: number;
  /** Unit for the count and rate, e.g. 'runs', 'steps', 'batches'. */
  unit?: string;
  /** The command prints JSON: never draw. */
  json?: boolean;
  /** Force on/off; default: on when the stream is a TTY. */
  enabled?: boolean;
  /** Default process.stderr (stdout stays clean for results). */
  stream?: NodeJS.WriteStream;
}

const noop: Progress = {
  enabled: false,
  update() {},
  increment() {},
  label() {},
  stop() {},
};

/** Start a bar `label [████░░] 3/12 runs | 1.5 runs/s | ETA 6s` on stderr, or a no-op. */
export function startProgress(label: string, opts: ProgressOptions): Progress {
  const stream = opts.stream ?? process.stderr;
  const enabled = opts.enabled ?? (!opts.json && stream.isTTY === true);
  if (!enabled) return noop;
  const unit = opts.unit ?? 'steps';
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: `{label} [{bar}] {value}/{total} ${unit} | {rate} ${unit}/s | ETA {eta_formatted}`,
      barsize: 24,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 8,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  const t0 = performance.now();
  let current = 0;
  let text = label;
  const payload = () => {
    const s = (performance.now() - t0) / 1000;
    const rate = s > 0 ? current / s : 0;
    return { label: text, rate: rate >= 10 ? rate.toFixed(0) : rate.toFixed(2) };
  };
  bar.start(opts.total, 0, payload());
  let stopped = false;
  return {
    enabled: true,
    update(done, total) {
      current = done;
      if (total !== undefined) bar.setTotal(total);
      bar.update(done, payload());
    },
    increment(steps = 1) {
      current += steps;
      bar.update(current, payload());
    },
    label(t) {
      text = t;
      bar.update(current, payload());
    },
    stop() {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}
