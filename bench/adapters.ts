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
  /** Seconds each route is driven per run (the spec is 10). */
  durationSeconds: number;
  /** Length of one slice: a run alternates between the routes slice by slice. */
  sliceSeconds: number;
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
  return { latency: result.latency.average, requests: result["2xx"], seconds: result.duration };
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
        // A run drives each route for `durationSeconds` in all, in slices that alternate between the two routes
        // (which goes first alternates too): a slow spell of the machine falls on both routes alike, where two
        // back-to-back 10 s blocks put it on one of them.
        const totals = {
          adapter: { requests: 0, seconds: 0, latency: 0, cpu: 0 },
          bare: { requests: 0, seconds: 0, latency: 0, cpu: 0 },
        };
        const slices = Math.max(1, Math.round(config.durationSeconds / config.sliceSeconds));
        const sliceSeconds = config.durationSeconds / slices;
        for (let slice = 0; slice < slices; slice++) {
          const order: Array<"adapter" | "bare"> =
            (run + slice) % 2 === 1 ? ["adapter", "bare"] : ["bare", "adapter"];
          for (const route of order) {
            const cpu = await host.call("cpuMs");
            const result = await cannon(
              `${app.url}${route === "adapter" ? app.adapterPath : app.barePath}`,
              app.token,
              { ...config, durationSeconds: sliceSeconds },
            );
            const total = totals[route];
            total.cpu += (await host.call("cpuMs")) - cpu;
            total.requests += result.requests;
            total.seconds += result.seconds;
            total.latency += result.latency * result.requests;
          }
        }
        const summary = (route: "adapter" | "bare") => {
          const total = totals[route];
          return {
            rps: total.requests / total.seconds,
            latency: total.latency / total.requests,
            cpu: total.cpu / total.requests,
          };
        };
        const adapter = summary("adapter");
        const bare = summary("bare");
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
