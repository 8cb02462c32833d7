import { listenOnNode, runExample } from "@ryze/example-shared";
import { buildApp } from "./app.js";

await runExample("express", buildApp, listenOnNode);
