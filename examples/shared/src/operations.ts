import type { ChatwootBridge } from "@ryze/chatwoot-core";
import type { HttpHandler, HttpResponse } from "@ryze/chatwoot-core/adapter";

const JSON_TYPE = "application/json; charset=utf-8";

/**
 * The operator's routes of the example apps (`docs/operations.md`), mounted with the same adapters as the bridge:
 * `GET /metrics` (Prometheus text format, the bridge's registry), `GET /health` (liveness: the process and its
 * database) and `GET /ready` (readiness: the store, the outbox dispatcher, the realtime links this process holds),
 * each 200 or 503 with a JSON body naming every check and what failed. No caller token: serve them on a port or path
 * only the orchestrator and Prometheus reach.
 */
export function createOperationsRoutes(bridge: Pick<ChatwootBridge, "metrics" | "health">): {
  http: HttpHandler;
} {
  const health = async (scope: "liveness" | "readiness"): Promise<HttpResponse> => {
    const report = await bridge.health(scope);
    return {
      status: report.status === "ok" ? 200 : 503,
      headers: { "content-type": JSON_TYPE, "cache-control": "no-store" },
      body: JSON.stringify(report),
    };
  };
  const http: HttpHandler = {
    async handle(request) {
      const method = request.method.toUpperCase();
      if (method !== "GET") return null;
      const [path] = request.path.split("?", 1);
      if (path === "/health") return health("liveness");
      if (path === "/ready") return health("readiness");
      if (path === "/metrics") {
        return {
          status: 200,
          headers: { "content-type": bridge.metrics.contentType, "cache-control": "no-store" },
          body: await bridge.metrics.metrics(),
        };
      }
      return null;
    },
  };
  return { http };
}
