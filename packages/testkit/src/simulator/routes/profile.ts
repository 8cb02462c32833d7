/** `Api::V1::ProfilesController#show`. */
import type { Route } from "../router.js";
import { renderUser } from "../views.js";

export const profileRoutes: Route[] = [
  {
    method: "GET",
    pattern: "/api/v1/profile",
    scope: "user",
    handle: ({ store, user }) => ({ body: renderUser(store, user) }),
  },
];
