/**
 * A micro-benchmark run on first use and cached: a small float32 matrix-vector loop, the shape of a
 * decode step. Its fastest round gives a speed score (MFLOP/s of plain JS on this device) that the
 * policy compares with a floor. Later decisions read the cache.
 *
 * A busy moment must not brand a fast device slow for a week: at least MIN_ROUNDS rounds run
 * whatever the clock says (the first rounds are interpreted, the JIT needs a few to compile the
 * loop), the budget is a soft 15 ms with a hard cap, and a score below the floor is kept for
 * SLOW_KEEP_MS only, so the next page load measures again.
 */

export interface Benchmark {
  mflops: number;
  measuredAt: number;
  ms: number;
  rounds: number;
}

const KEY = 'inferlab.browser.benchmark.v3';
const WEEK_MS = 7 * 24 * 3600 * 1000;
export const SLOW_KEEP_MS = 10 * 60 * 1000;
export const MIN_ROUNDS = 12;
const SOFT_BUDGET_MS = 15;
const HARD_CAP_MS = 250;
const MAX_ROUNDS = 400;

export function runBenchmark(now: () => number = () => performance.now()): Benchmark {
  const n = 256;
  const matrix = new Float32Array(n * n);
  const vector = new Float32Array(n);
  const out = new Float32Array(n);
  for (let i = 0; i < matrix.length; i++) matrix[i] = ((i * 2654435761) % 1000) / 1000;
  for (let i = 0; i < n; i++) vector[i] = i / n;
  const started = now();
  let fastest = Infinity;
  let rounds = 0;
  // the fastest round, not the average: a busy machine preempts some rounds, the device's speed
  // is what one round takes when it runs
  for (; rounds < MAX_ROUNDS; rounds++) {
    const spent = now() - started;
    if (spent >= HARD_CAP_MS || (rounds >= MIN_ROUNDS && spent >= SOFT_BUDGET_MS)) break;
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
  return { mflops: (2 * n * n) / (Math.max(fastest, 0.005) * 1000), measuredAt: Date.now(), ms, rounds };
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

/** Whether a kept score still stands: a week for a device above `floor`, minutes below it. */
export function stillValid(found: Benchmark, floor: number, at: number = Date.now()): boolean {
  const age = at - found.measuredAt;
  return age >= 0 && age < (found.mflops >= floor ? WEEK_MS : SLOW_KEEP_MS);
}

/** The cached benchmark, or a fresh one (then cached). */
export function cachedBenchmark(floor: number, kept: Store | null = store(),
  measure: () => Benchmark = runBenchmark): Benchmark {
  const raw = kept?.getItem(KEY);
  if (raw) {
    try {
      const found = JSON.parse(raw) as Benchmark;
      if (typeof found.mflops === 'number' && typeof found.measuredAt === 'number' && stillValid(found, floor)) {
        return found;
      }
    } catch {
      /* measured again below */
    }
  }
  const fresh = measure();
  kept?.setItem(KEY, JSON.stringify(fresh));
  return fresh;
}
