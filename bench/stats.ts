import { readFileSync } from "node:fs";

/** Small statistics helpers shared by the benchmarks. */

/** A figure measured over several runs: the median with the range it came from. */
export interface Figure {
  median: number;
  min: number;
  max: number;
  runs: number[];
  unit: string;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Percentile by the nearest-rank method (p in 0..100). */
export function percentile(values: ArrayLike<number>, p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function figure(runs: readonly number[], unit: string): Figure {
  const finite = runs.filter((value) => Number.isFinite(value));
  return {
    median: median(finite),
    min: finite.length > 0 ? Math.min(...finite) : Number.NaN,
    max: finite.length > 0 ? Math.max(...finite) : Number.NaN,
    runs: [...runs],
    unit,
  };
}

/** Rounds for display: three significant digits, never in exponent form. */
export function round(value: number, digits = 3): string {
  if (!Number.isFinite(value)) return "n/a";
  if (Number.isInteger(value) && Math.abs(value) < 1e6) return String(value);
  const magnitude = Math.floor(Math.log10(Math.abs(value)));
  const decimals = Math.max(0, digits - 1 - magnitude);
  return value.toFixed(Math.min(decimals, 6));
}

/** `median (min–max) unit`. */
export function formatFigure(value: Figure | null | undefined, digits = 3): string {
  if (!value) return "n/a";
  const unit = value.unit ? ` ${value.unit}` : "";
  if (value.min === value.max) return `${round(value.median, digits)}${unit}`;
  return `${round(value.median, digits)}${unit} (${round(value.min, digits)}–${round(value.max, digits)})`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A clock comparable across the benchmark's processes (ms since the epoch, sub-millisecond resolution). */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

/** Polls `check` until it returns true; throws with `what` after `timeoutMs`. */
export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 120_000,
  intervalMs = 10,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** Runs `worker(index)` for every index below `count`, at most `concurrency` at a time. */
export async function pool(
  count: number,
  concurrency: number,
  worker: (index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count) {
      const index = next++;
      await worker(index);
    }
  });
  await Promise.all(lanes);
}

/** CPU time used by this process so far (ms, user + system). */
export function cpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

/**
 * CPU time used by the whole machine so far (ms over all cores, every process: the integration, the simulator and
 * the database), from /proc/stat; null where there is no /proc/stat. Resolution: one clock tick (10 ms).
 */
export function machineCpuMs(): number | null {
  let line: string;
  try {
    line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!;
  } catch {
    return null;
  }
  // cpu user nice system idle iowait irq softirq steal guest guest_nice: user, nice, system, irq and softirq are
  // work done here (guest time is already in user and nice; steal is another machine's).
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0] = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const busy = user + nice + system + irq + softirq;
  return busy * 10;
}
