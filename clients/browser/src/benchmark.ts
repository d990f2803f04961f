/**
 * A micro-benchmark run on first use and cached (localStorage, a week): a small float32
 * matrix-vector loop, the shape of a decode step, for at most 15 ms. Its fastest round gives a
 * speed score (MFLOP/s of plain JS on this device) that the policy compares with a floor. Later
 * decisions read the cache.
 */

export interface Benchmark {
  mflops: number;
  measuredAt: number;
  ms: number;
}

const KEY = 'inferlab.browser.benchmark.v2';
const WEEK_MS = 7 * 24 * 3600 * 1000;

export function runBenchmark(now: () => number = () => performance.now()): Benchmark {
  const n = 256;
  const matrix = new Float32Array(n * n);
  const vector = new Float32Array(n);
  const out = new Float32Array(n);
  for (let i = 0; i < matrix.length; i++) matrix[i] = ((i * 2654435761) % 1000) / 1000;
  for (let i = 0; i < n; i++) vector[i] = i / n;
  const started = now();
  let fastest = Infinity;
  // the fastest round, not the average: a busy machine preempts some rounds, the device's speed
  // is what one round takes when it runs (and the first rounds warm the JIT up)
  for (let rounds = 0; rounds < 400 && now() - started < 15; rounds++) {
    const begun = now();
    for (let r = 0; r < n; r++) {
      let sum = 0;
      const row = r * n;
      for (let c = 0; c < n; c++) sum += matrix[row + c]! * vector[c]!;
      out[r] = sum;
    }
    vector[rounds % n] = out[rounds % n]! / n;
    fastest = Math.min(fastest, now() - begun);
  }
  const ms = now() - started;
  // performance.now() is coarsened (5 µs cross-origin isolated, 100 µs otherwise): a floor on a round
  return { mflops: (2 * n * n) / (Math.max(fastest, 0.005) * 1000), measuredAt: Date.now(), ms };
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
