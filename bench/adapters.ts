/**
 * 3. Adapter overhead: `GET /api/chatwoot/list/:instance` through the Express, Koa and Fastify adapters against
 * the bare framework route that serves the same JSON from the same store read, with autocannon. The app runs in
 * its own process (one core), autocannon in this one (the other core). Adapter and bare runs alternate.
 */
import autocannon from "autocannon";
import { request } from "undici";
import type { AdapterHostMethods, Framework } from "./adapter-host.js";
import { spawnChild } from "./rpc.js";
import { type Figure, figure } from "./stats.js";

export interface AdaptersConfig {
  runs: number;
  frameworks: Framework[];
  /** Seconds per autocannon run (the spec is 10). */
  durationSeconds: number;
  connections: number;
}

export interface AdapterResult {
  framework: Framework;
  adapter: Figure;
  bare: Figure;
  ratio: Figure;
  /** Mean latency per request (ms), adapter and bare. */
  adapterLatency: Figure;
  bareLatency: Figure;
  /** Server CPU per request (ms) through the adapter and the bare route. */
  adapterCpu: Figure;
  bareCpu: Figure;
  bodyBytes: { adapter: number; bare: number };
}

async function cannon(url: string, token: string, config: AdaptersConfig) {
  const result = await autocannon({
    url,
    connections: config.connections,
    duration: config.durationSeconds,
    headers: { token },
  });
  if (result.non2xx > 0 || result.errors > 0)
    throw new Error(`${url}: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
  return { rps: result["2xx"] / result.duration, latency: result.latency.average, requests: result["2xx"] };
}

export async function benchAdapters(
  config: AdaptersConfig,
  log: (line: string) => void,
): Promise<AdapterResult[]> {
  const results: AdapterResult[] = [];
  for (const framework of config.frameworks) {
    const host = await spawnChild<AdapterHostMethods>("adapter-host.ts", [framework]);
    try {
      const app = await host.call("start");
      // Both routes must answer the same JSON; the first list also fills the 30 s live-check cache.
      const read = async (path: string) => {
        const response = await request(`${app.url}${path}`, { headers: { token: app.token } });
        const text = await response.body.text();
        if (response.statusCode !== 200)
          throw new Error(`${framework} ${path}: ${response.statusCode} ${text}`);
        return text;
      };
      const adapterBody = await read(app.adapterPath);
      const bareBody = await read(app.barePath);
      if (adapterBody !== bareBody)
        throw new Error(
          `${framework}: the bare route does not serve the same JSON:\n${adapterBody}\n${bareBody}`,
        );
      // JIT warm-up of both routes, not recorded.
      await cannon(`${app.url}${app.adapterPath}`, app.token, { ...config, durationSeconds: 2 });
      await cannon(`${app.url}${app.barePath}`, app.token, { ...config, durationSeconds: 2 });
      const runs = {
        adapter: [] as number[],
        bare: [] as number[],
        ratio: [] as number[],
        adapterLatency: [] as number[],
        bareLatency: [] as number[],
        adapterCpu: [] as number[],
        bareCpu: [] as number[],
      };
      for (let run = 1; run <= config.runs; run++) {
        const measure = async (path: string) => {
          const cpu = await host.call("cpuMs");
          const result = await cannon(`${app.url}${path}`, app.token, config);
          return { ...result, cpu: ((await host.call("cpuMs")) - cpu) / result.requests };
        };
        // The order alternates between runs, so that neither route always goes first.
        let adapter: Awaited<ReturnType<typeof measure>>;
        let bare: Awaited<ReturnType<typeof measure>>;
        if (run % 2 === 1) {
          adapter = await measure(app.adapterPath);
          bare = await measure(app.barePath);
        } else {
          bare = await measure(app.barePath);
          adapter = await measure(app.adapterPath);
        }
        runs.adapterCpu.push(adapter.cpu);
        runs.bareCpu.push(bare.cpu);
        runs.adapter.push(adapter.rps);
        runs.bare.push(bare.rps);
        runs.ratio.push(adapter.rps / bare.rps);
        runs.adapterLatency.push(adapter.latency);
        runs.bareLatency.push(bare.latency);
        log(
          `  ${framework} run ${run}/${config.runs}: adapter ${adapter.rps.toFixed(0)} req/s, ` +
            `bare ${bare.rps.toFixed(0)} req/s, ratio ${(adapter.rps / bare.rps).toFixed(3)}`,
        );
      }
      results.push({
        framework,
        adapter: figure(runs.adapter, "req/s"),
        bare: figure(runs.bare, "req/s"),
        ratio: figure(runs.ratio, "×"),
        adapterLatency: figure(runs.adapterLatency, "ms"),
        bareLatency: figure(runs.bareLatency, "ms"),
        adapterCpu: figure(runs.adapterCpu, "ms"),
        bareCpu: figure(runs.bareCpu, "ms"),
        bodyBytes: { adapter: Buffer.byteLength(adapterBody), bare: Buffer.byteLength(bareBody) },
      });
    } finally {
      await host.close();
    }
  }
  return results;
}
