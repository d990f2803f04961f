/**
 * A micro-benchmark run on first use and cached (localStorage, a week): a small float32
 * matrix-vector loop, the shape of a decode step. It gives a speed score (MFLOP/s of plain JS on
 * this device) that the policy compares with the model's needs. Later decisions read the cache.
 */

export interface Benchmark {
  mflops: number;
  measuredAt: number;
  ms: number;
}

const KEY = 'inferlab.browser.benchmark.v1';
const WEEK_MS = 7 * 24 * 3600 * 1000;

export function runBenchmark(now: () => number = () => performance.now()): Benchmark {
  const n = 256;
  const matrix = new Float32Array(n * n);
  const vector = new Float32Array(n);
  const out = new Float32Array(n);
  for (let i = 0; i < matrix.length; i++) matrix[i] = ((i * 2654435761) % 1000) / 1000;
  for (let i = 0; i < n; i++) vector[i] = i / n;
  const started = now();
  let rounds = 0;
  while (now() - started < 15) {
    for (let r = 0; r < n; r++) {
      let sum = 0;
      const row = r * n;
      for (let c = 0; c < n; c++) sum += matrix[row + c]! * vector[c]!;
      out[r] = sum;
    }
    vector[rounds % n] = out[rounds % n]! / n;
    rounds++;
  }
  const ms = now() - started;
  return { mflops: (2 * n * n * rounds) / (ms * 1000), measuredAt: Date.now(), ms };
}

interface Store {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

function store(): Store | null {
  try {
    return (globalThis as { localStorage?: Store }).localStorage ?? null;
  } catch {
    return null;
  }
}

/** The cached benchmark, or a fresh one (then cached). */
export function cachedBenchmark(): Benchmark {
  const kept = store();
  const raw = kept?.getItem(KEY);
  if (raw) {
    try {
      const found = JSON.parse(raw) as Benchmark;
      if (typeof found.mflops === 'number' && Date.now() - found.measuredAt < WEEK_MS) return found;
    } catch {
      /* measured again below */
    }
  }
  const fresh = runBenchmark();
  kept?.setItem(KEY, JSON.stringify(fresh));
  return fresh;
}
