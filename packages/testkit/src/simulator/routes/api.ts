/**
 * `GET /api` (`ApiController#index`, `app/controllers/api_controller.rb`, identical in 4.10.0 and 4.13.0): no
 * authentication (`skip_before_action :set_current_user`), the version from `config/app.yml`, the time as
 * `Time.now.utc.to_fs(:db)` and the state of Redis and PostgreSQL (always `ok` here).
 */
import type { Route } from "../router.js";

/** `YYYY-MM-DD HH:MM:SS` in UTC, without a zone (`to_fs(:db)`). */
function dbTime(date: Date): string {
  return date
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d{3}Z$/, "");
}

export const apiRoutes: Route[] = [
  {
    method: "GET",
    pattern: "/api",
    scope: "public",
    handle: ({ store, runtime }) => ({
      body: {
        version: store.settings.features.release,
        timestamp: dbTime(runtime.now()),
        queue_services: "ok",
        data_services: "ok",
      },
    }),
  },
];
