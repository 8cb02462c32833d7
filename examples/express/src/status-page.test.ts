// The status page (`GET /api/chatwoot/ui`, docs/operations.md "Status page") in a real headless Chromium, against the
// Express example app and the Chatwoot simulator: the token prompt, the status table and its filters, a dead letter
// retried with the button and delivered once, the page refreshing itself, and screenshots of the empty, healthy and
// failing states compared with docs/images/status-*.png (UPDATE_SCREENSHOTS=1 rewrites them).
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type ChatwootSimulator,
  eventually,
  startChatwootSimulator,
  textEvent,
} from "@ryze/chatwoot-testkit";
import { readConfig } from "@ryze/example-shared";
import { type StartedExample, servedBy } from "@ryze/example-shared/app-suite";
import { pino } from "pino";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "./app.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const REQUIRED = process.env.CI_REQUIRE_CHROMIUM === "1";
const UPDATE = process.env.UPDATE_SCREENSHOTS === "1";
const IMAGES = resolve(dirname(fileURLToPath(import.meta.url)), "../../../docs/images");
const ACCOUNT_TOKEN = "status-page-account-token";
const available = existsSync(CHROMIUM);

if (!available) {
  if (REQUIRED)
    throw new Error(
      `CI_REQUIRE_CHROMIUM=1 but there is no Chromium at ${CHROMIUM} (apt-get install chromium)`,
    );
  console.warn(
    `\n*** SKIPPED: the status page test needs Chromium at ${CHROMIUM} (Debian: apt-get install chromium, or set ` +
      "CHROMIUM_PATH). Set CI_REQUIRE_CHROMIUM=1 to fail instead. ***\n",
  );
}

/*
 * Screenshot comparison, done in the browser itself (a canvas; no image library needed). A pixel differs when one of
 * its channels is off by more than 16 of 255: the same Chromium renders these pages identically from run to run
 * (fixed viewport, scale 1, no hinting, sRGB, reduced motion, volatile text replaced), and 16 still absorbs the faint
 * anti-aliasing shifts of another minor Chromium or FreeType build, while a colour changed on purpose (a badge from
 * green to red moves a channel by 30 or more) counts. At most 0.1 % of the pixels (about 1,000 of 1280 x 800) may
 * differ: a recoloured badge, a row more or less or a moved column changes several thousand. The texts themselves
 * are asserted on the DOM, not on pixels.
 */
const CHANNEL_TOLERANCE = 16;
const PIXEL_SHARE = 0.001;

// Browser-side code, as source text: it runs in Chromium (this project compiles without the DOM library).
const COMPARE_IN_BROWSER = `async ({ a, b, tolerance }) => {
  const load = async (base64) => createImageBitmap(await (await fetch("data:image/png;base64," + base64)).blob());
  const [left, right] = await Promise.all([load(a), load(b)]);
  if (left.width !== right.width || left.height !== right.height) {
    return { size: left.width + "x" + left.height + " vs " + right.width + "x" + right.height, differing: 1, total: 1 };
  }
  const pixels = (image) => {
    const context = new OffscreenCanvas(image.width, image.height).getContext("2d");
    context.drawImage(image, 0, 0);
    return context.getImageData(0, 0, image.width, image.height).data;
  };
  const p = pixels(left);
  const q = pixels(right);
  let differing = 0;
  for (let index = 0; index < p.length; index += 4) {
    for (let channel = 0; channel < 4; channel++) {
      if (Math.abs(p[index + channel] - q[index + channel]) > tolerance) {
        differing++;
        break;
      }
    }
  }
  return { size: "", differing, total: p.length / 4 };
}`;

const STEADY_IN_BROWSER = `(() => {
  for (const node of document.querySelectorAll(".time")) if (node.textContent !== "-") node.textContent = "3 s ago";
  for (const node of document.querySelectorAll(".id")) node.textContent = "5f0c2a9e";
  document.getElementById("updated").textContent = "updated 12:00:00";
  for (const node of document.querySelectorAll("td, #detail-facts")) {
    if (/127\\.0\\.0\\.1:\\d+/.test(node.textContent)) {
      node.textContent = node.textContent.replace(/http:\\/\\/127\\.0\\.0\\.1:\\d+/g, "https://chatwoot.example.com");
    }
  }
})()`;

async function compareScreenshot(browser: Browser, name: string, actual: Buffer): Promise<void> {
  const file = join(IMAGES, `status-${name}.png`);
  if (UPDATE || !existsSync(file)) {
    writeFileSync(file, actual);
    if (!UPDATE) throw new Error(`no committed screenshot ${file}: written now, check it and run again`);
    return;
  }
  const expected = readFileSync(file);
  const page = await browser.newPage();
  try {
    const result = (await page.evaluate(
      `(${COMPARE_IN_BROWSER})(${JSON.stringify({
        a: expected.toString("base64"),
        b: actual.toString("base64"),
        tolerance: CHANNEL_TOLERANCE,
      })})`,
    )) as { size: string; differing: number; total: number };
    console.info(`screenshot ${name}: ${result.differing} of ${result.total} pixels differ`);
    if (result.size || result.differing / result.total > PIXEL_SHARE) {
      writeFileSync(join(tmpdir(), `status-${name}.actual.png`), actual);
    }
    expect(result.size, `${name}: size`).toBe("");
    expect(
      result.differing / result.total,
      `${name}: share of differing pixels (actual written to ${join(tmpdir(), `status-${name}.actual.png`)})`,
    ).toBeLessThanOrEqual(PIXEL_SHARE);
  } finally {
    await page.close();
  }
}

/** What differs between runs (ports, ids, times) replaced by fixed text, so the screenshots are reproducible. */
async function steady(page: Page): Promise<void> {
  await page.evaluate(STEADY_IN_BROWSER);
}

describe.skipIf(!available)("status page in headless Chromium (examples/express)", () => {
  let sim: ChatwootSimulator;
  let example: StartedExample;
  let browser: Browser;
  let page: Page;
  let accountId: number;
  let adminToken: string;
  const dir = mkdtempSync(join(tmpdir(), "cw-status-page-"));

  beforeAll(async () => {
    sim = await startChatwootSimulator();
    accountId = sim.createAccount({ name: "Acme" }).id;
    adminToken = sim.createUser({
      name: "Jane",
      accounts: [{ accountId, role: "administrator" }],
    }).accessToken;
    const config = readConfig({
      DATABASE_URL: `sqlite:${join(dir, "chatwoot.sqlite")}`,
      RYZE_ACCOUNT_TOKEN: ACCOUNT_TOKEN,
      RYZE_INSTANCES: "suporte:status-page-suporte,vendas:status-page-vendas",
    });
    const runtime = await buildApp(config, {
      dataDir: dir,
      logger: pino({ level: "silent" }),
      bridge: {
        dispatcher: { pollIntervalMs: 20 },
        retry: {
          inbound: { baseDelayMs: 20, maxDelayMs: 200 },
          outbound: { baseDelayMs: 20, maxDelayMs: 100 },
        },
        echoWaitMs: 100,
        // The test polls the status route while it waits; the page's own requests share the token's quota.
        rateLimit: { points: 10_000 },
      },
    });
    example = await servedBy(runtime.app.listen(0, "127.0.0.1"), runtime);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--font-render-hinting=none",
        "--force-color-profile=srgb",
      ],
    });
    const context = await browser.newContext({
      viewport: { width: 1280, height: 800 },
      deviceScaleFactor: 1,
      locale: "en-US",
      timezoneId: "UTC",
      reducedMotion: "reduce",
    });
    page = await context.newPage();
    // The page's own clock: its 5 s refresh runs only when the test moves time on (below), never between the
    // normalisation of a screenshot and the shot.
    await page.clock.install({ time: new Date("2026-04-20T12:00:00Z") });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await example?.close();
    await sim?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${example.url}/api/chatwoot/${path}`, {
      ...init,
      headers: { token: ACCOUNT_TOKEN, "content-type": "application/json", ...init.headers },
    });
  const status = async () =>
    ((await (await api("status")).json()) as { integrations: Array<Record<string, unknown>> }).integrations;
  const rows = () => page.locator("#rows tr");
  const instancesShown = async () =>
    rows().evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-instance")));
  const shot = () => page.screenshot({ fullPage: true, animations: "disabled", caret: "hide" });
  const activate = async (instance: string) => {
    const answer = await api(`set/${instance}`, {
      method: "POST",
      body: JSON.stringify({
        chatwootBaseUrl: sim.url,
        chatwootAccountId: accountId,
        chatwootApiToken: adminToken,
      }),
    });
    expect(answer.status, await answer.clone().text()).toBe(201);
  };

  it("asks for the token, keeps it for the tab, and refuses a wrong one", async () => {
    const response = await page.goto(`${example.url}/api/chatwoot/ui`);
    expect(response?.status()).toBe(200);
    expect(response?.headers()["content-security-policy"]).toMatch(
      /^default-src 'none'; script-src 'sha256-/,
    );
    await expect.poll(() => page.locator("#login").isVisible()).toBe(true);
    await page.fill("#token", "not-a-token");
    await page.click("#login-form button[type=submit]");
    await expect
      .poll(() => page.locator("#login-error").textContent())
      .toBe("That token was refused: Invalid token");
    expect(await page.evaluate("sessionStorage.length")).toBe(0);

    await page.fill("#token", ACCOUNT_TOKEN);
    await page.click("#login-form button[type=submit]");
    await expect.poll(() => page.locator("#empty").textContent()).toBe("No integrations yet.");
    expect(await page.evaluate("Object.values(sessionStorage)")).toEqual([ACCOUNT_TOKEN]);
    // The token is the tab's: a reload does not ask again.
    await page.reload();
    await expect.poll(() => page.locator("#empty").textContent()).toBe("No integrations yet.");
    expect(await page.locator("#login").isVisible()).toBe(false);
    await steady(page);
    await compareScreenshot(browser, "empty", await shot());
  });

  it("shows every integration of the account, and refreshes itself", async () => {
    await activate("suporte");
    await activate("vendas");
    const loaded = async () => Number(await page.evaluate("document.body.dataset.loaded"));
    const loads = await loaded();
    // Five seconds on the page's clock: it reads the status again by itself.
    await page.clock.runFor(5_000);
    await expect.poll(loaded).toBeGreaterThan(loads);
    await expect.poll(instancesShown).toEqual(["suporte", "vendas"]);

    await example.runtime.bridge.ingest("suporte", textEvent({ phone: "5511955550001", text: "oi" }));
    await eventually(async () => (await status())[0]!.last_inbound_at !== null, {
      what: "the message delivered",
    });
    await page.click("#refresh");
    await expect
      .poll(() => page.locator("#rows tr[data-instance=suporte] td").nth(7).textContent())
      .not.toBe("-");
    const cells = await page.locator("#rows tr[data-instance=suporte] td").allTextContents();
    const version = String((await status())[0]!.chatwoot_version);
    expect(version).toMatch(/^4\.\d+\.\d+$/);
    expect(cells.slice(0, 5)).toEqual(["suporte", "active", "connected", version, "0"]);
    await steady(page);
    await compareScreenshot(browser, "healthy", await shot());
  });

  it("filters the failing ones, lists a dead letter, and the retry button delivers it once", async () => {
    // suporte: a message Chatwoot refuses for good (a dead letter); vendas: Chatwoot refuses the token (paused).
    sim.faults.inject({
      method: "POST",
      path: /\/messages$/,
      times: 1,
      status: 422,
      body: { error: "Validation failed: Content is too long (maximum is 150000 characters)" },
    });
    await example.runtime.bridge.ingest(
      "suporte",
      textEvent({ phone: "5511955550001", text: "refused once", id: "3EB0STATUSPAGE01" }),
    );
    await eventually(async () => (await status())[0]!.dead_letters === 1, { what: "the dead letter" });
    sim.faults.inject({
      method: "POST",
      path: /\/contacts$/,
      times: 1,
      status: 401,
      body: { error: "Invalid Access Token" },
    });
    await example.runtime.bridge.ingest("vendas", textEvent({ phone: "5511955550002", text: "hello" }));
    // Paused, its realtime link is left by the ownership sweep: the steady state shown.
    await eventually(
      async () => {
        const vendas = (await status())[1]!;
        return vendas.status === "paused" && vendas.realtime === "none";
      },
      { what: "vendas paused, its link left" },
    );

    await page.click("#refresh");
    await expect.poll(() => page.locator("#sum-dead").textContent()).toBe("1");
    const filter = (name: string) => page.locator(`input[data-filter=${name}]`);
    await filter("paused").check();
    expect(await instancesShown()).toEqual(["vendas"]);
    await filter("paused").uncheck();
    await filter("dead").check();
    expect(await instancesShown()).toEqual(["suporte"]);
    await filter("dead").uncheck();
    await filter("deaf").check();
    expect(await instancesShown()).toEqual([]);
    expect(await page.locator("#empty").textContent()).toBe("No integration matches the filters.");
    await filter("deaf").uncheck();
    await filter("error").check();
    expect(await instancesShown()).toEqual([]);
    await filter("error").uncheck();
    expect(await instancesShown()).toEqual(["suporte", "vendas"]);

    await page.click("#rows tr[data-instance=suporte] a.instance");
    await expect.poll(() => page.locator("#dead-rows tr").count()).toBe(1);
    expect(await page.locator("#dead-rows tr td").nth(3).textContent()).toMatch(
      /HTTP 422: .*Content is too long/,
    );
    await steady(page);
    await compareScreenshot(browser, "failing", await shot());

    await page.click("#dead-rows tr button");
    await expect
      .poll(() => page.locator("#notice").textContent())
      .toMatch(/^Dead letter [0-9a-f]{8} queued for retry\.$/);
    await eventually(
      async () => (await status())[0]!.dead_letters === 0 && (await status())[0]!.outbox_depth === 0,
      {
        what: "the retried message delivered",
      },
    );
    const [conversation] = sim.conversations(accountId) as Array<{ id: number; inbox_id: number }>;
    const delivered = (
      sim.messages(accountId, conversation!.id) as Array<{ source_id: string | null }>
    ).filter((message) => message.source_id === "WAID:3EB0STATUSPAGE01");
    expect(delivered).toHaveLength(1);
    await page.click("#refresh");
    await expect.poll(() => page.locator("#dead-empty").isVisible()).toBe(true);
    expect(await page.locator("#sum-dead").textContent()).toBe("0");
  });
});
