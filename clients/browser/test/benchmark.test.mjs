// The device benchmark (dist/benchmark.js, built by tsc): a busy moment must not brand a device slow.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cachedBenchmark, MIN_ROUNDS, runBenchmark, SLOW_KEEP_MS, stillValid } from '../dist/benchmark.js';

function memoryStore() {
  const items = new Map();
  return { getItem: (key) => items.get(key) ?? null, setItem: (key, value) => items.set(key, value), items };
}

test('a clock that jumps past the budget still gets the minimum rounds, the JIT warm-up included', () => {
  let t = 0;
  const result = runBenchmark(() => (t += 2)); // 6 ms a round: the 15 ms budget is spent after three
  assert.equal(result.rounds, MIN_ROUNDS);
});

test('a clock stuck far past the hard cap stops the benchmark', () => {
  let calls = 0;
  const result = runBenchmark(() => (calls++ === 0 ? 0 : 1000));
  assert.equal(result.rounds, 0);
});

test('the fastest round is the score: one preempted round does not lower it', () => {
  const result = runBenchmark();
  assert.ok(result.rounds >= MIN_ROUNDS, `${result.rounds} rounds`);
  assert.ok(result.mflops > 20, `${result.mflops} MFLOP/s on the machine running the tests`);
});

test('a fast score is kept a week, a slow one only minutes', () => {
  const now = 10 * 24 * 3600 * 1000;
  assert.ok(stillValid({ mflops: 900, measuredAt: now - 6 * 24 * 3600 * 1000, ms: 15, rounds: 12 }, 20, now));
  assert.ok(!stillValid({ mflops: 900, measuredAt: now - 8 * 24 * 3600 * 1000, ms: 15, rounds: 12 }, 20, now));
  assert.ok(stillValid({ mflops: 5, measuredAt: now - SLOW_KEEP_MS + 1000, ms: 15, rounds: 12 }, 20, now));
  assert.ok(!stillValid({ mflops: 5, measuredAt: now - SLOW_KEEP_MS - 1, ms: 15, rounds: 12 }, 20, now));
  assert.ok(!stillValid({ mflops: 900, measuredAt: now + 60_000, ms: 15, rounds: 12 }, 20, now), 'a score from the future');
});

test('the cache answers while valid and a stale slow score is measured again', () => {
  const kept = memoryStore();
  let measured = 0;
  const slow = () => ({ mflops: 5, measuredAt: Date.now() - SLOW_KEEP_MS - 1, ms: 15, rounds: 12, n: ++measured });
  cachedBenchmark(20, kept, slow);
  cachedBenchmark(20, kept, slow);
  assert.equal(measured, 2, 'a slow score older than its keep time is not reused');
  const fast = () => ({ mflops: 900, measuredAt: Date.now(), ms: 15, rounds: 12, n: ++measured });
  const first = cachedBenchmark(20, kept, fast);
  const second = cachedBenchmark(20, kept, fast);
  assert.equal(measured, 3);
  assert.deepEqual(second, first);
  kept.items.set([...kept.items.keys()][0], 'not json');
  cachedBenchmark(20, kept, fast);
  assert.equal(measured, 4, 'a corrupt entry is measured again');
});
