// Drives the dashboard in Debian's headless Chromium against a vitrine that tests/ui/run.sh
// started and fed. Environment: VITRINE_UI_URL (the /ui/ address), VITRINE_UI_TOKEN (the
// analyst token), VITRINE_UI_SESSION (a session with events), VITRINE_UI_SCREENSHOTS (a
// folder), VITRINE_UI_CHROMIUM (the browser binary).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";

const url = process.env.VITRINE_UI_URL;
const token = process.env.VITRINE_UI_TOKEN;
const session = process.env.VITRINE_UI_SESSION;
const shots = process.env.VITRINE_UI_SCREENSHOTS;
const executablePath = process.env.VITRINE_UI_CHROMIUM || "/usr/bin/chromium";

for (const [name, value] of Object.entries({ url, token, session, shots })) {
  if (!value) {
    throw new Error(`missing environment for ${name}; run this test through tests/ui/run.sh`);
  }
}

// Flags for a closed network: no background connections, no sandbox as root.
const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                       "--disable-background-networking", "--disable-component-update",
                       "--disable-sync", "--disable-dev-shm-usage"];

let browser;
let context;
let page;
const problems = []; // page errors and CSP or Trusted Types violations

function watch(p) {
  p.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  p.on("console", (message) => {
    // The first data calls go out without a token and get 401, which Chromium logs as
    // "Failed to load resource"; that is the expected way the page learns it needs one.
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
      problems.push(`console error: ${message.text()}`);
    }
  });
}

async function texts(locator) {
  return (await locator.allTextContents()).map((s) => s.trim());
}

before(async () => {
  browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS, headless: true });
  context = await browser.newContext({ locale: "en-US", viewport: { width: 1360, height: 900 } });
  page = await context.newPage();
  watch(page);
});

after(async () => {
  await browser?.close();
});

test("dashboard", async (t) => {
  await t.test("page asks for the analyst token", async () => {
    const response = await page.goto(url);
    assert.equal(response.status(), 200, "GET /ui/ did not answer 200");
    const csp = response.headers()["content-security-policy"] || "";
    assert.match(csp, /script-src 'self'/, `no strict Content-Security-Policy on /ui/: "${csp}"`);
    await page.getByTestId("token-card").waitFor({ state: "visible", timeout: 10000 });
    assert.equal(await page.locator("html").getAttribute("lang"), "en",
                 "an en-US browser did not get the English page");
    assert.ok(await page.getByTestId("token-error").isHidden(),
              "the token form shows an error before any token was sent");
  });

  await t.test("wrong token is rejected", async () => {
    await page.getByTestId("token-input").fill(`${token}-wrong`);
    await page.getByTestId("token-save").click();
    const error = page.getByTestId("token-error");
    await error.waitFor({ state: "visible", timeout: 10000 });
    assert.match(await error.textContent(), /401/, "the rejection does not name the 401");
    assert.ok(await page.getByTestId("token-card").isVisible(), "the token form closed");
  });

  await t.test("token is kept in sessionStorage", async () => {
    await page.getByTestId("token-input").fill(token);
    await page.getByTestId("token-save").click();
    await page.getByTestId("token-card").waitFor({ state: "hidden", timeout: 5000 });
    const kept = await page.evaluate(() => sessionStorage.getItem("vitrine.analystToken"));
    assert.equal(kept, token, "the token is not in sessionStorage");
  });

  await t.test("session lookup shows the profile", async () => {
    await page.getByTestId("session-input").fill(session);
    await page.getByTestId("lookup-button").click();
    await page.getByTestId("session-view").waitFor({ state: "visible", timeout: 10000 });
    const error = page.getByTestId("lookup-error");
    assert.ok(await error.isHidden(), `lookup failed: ${await error.textContent()}`);

    assert.equal((await page.getByTestId("profile-id").textContent()).trim(), session);
    assert.equal((await page.getByTestId("profile-events").textContent()).trim(), "8",
                 "the profile does not show the session's 8 events");

    const categories = await texts(page.getByTestId("bars-categories").locator(".bar-label"));
    assert.ok(categories.includes("perfume"), `no perfume bar among categories: ${categories}`);
    const brands = await texts(page.getByTestId("bars-brands").locator(".bar-label"));
    assert.ok(brands.includes("Aurelle"), `no Aurelle bar among brands: ${brands}`);
    const tiers = await page.getByTestId("bars-tiers").locator(".bar-row").count();
    assert.ok(tiers >= 1, "no price tier bar");
    const width = await page.getByTestId("bars-categories").locator(".bar-fill").first()
      .evaluate((e) => e.getBoundingClientRect().width);
    assert.ok(width > 10, `the strongest category bar is ${width}px wide`);
    const share = await page.getByTestId("bars-categories").locator(".bar-value").first()
      .textContent();
    assert.match(share, /\d+\s?%/, `no share on the category bar: "${share}"`);
  });

  await t.test("gender probability is shown", async () => {
    const segment = await page.getByTestId("gender-segment").textContent();
    assert.match(segment, /female/, `the women's-perfume session is not female: "${segment}"`);
    const probability = await page.getByTestId("gender-probability").textContent();
    const value = Number(/(\d+)\s?%/.exec(probability)?.[1]);
    assert.ok(value >= 70, `gender probability "${probability}" below 70 %`);
    assert.ok(value <= 100, `gender probability "${probability}" above 100 %`);
  });

  await t.test("recent views, cart and purchase are listed", async () => {
    const recent = await texts(page.getByTestId("recent-views").locator("li .mono"));
    for (const product of ["w-3", "c-1", "w-4"]) {
      assert.ok(recent.includes(product), `recently viewed lacks ${product}: ${recent}`);
    }
    const cart = await texts(page.getByTestId("cart").locator("li .mono"));
    assert.deepEqual(cart, ["w-2"], `cart is ${cart}`);
    const bought = await texts(page.getByTestId("purchased").locator("li .mono"));
    assert.deepEqual(bought, ["w-1"], `purchased is ${bought}`);
  });

  await t.test("recommendations come with reasons", async () => {
    const rows = page.getByTestId("recs-body").locator("tr");
    const count = await rows.count();
    assert.ok(count >= 3, `only ${count} recommendation rows`);
    const names = await texts(rows.locator(".product-name"));
    assert.ok(!names.includes("Aurelle Bloom No 1 Eau de Parfum for women"),
              "the purchased product w-1 is recommended");
    for (let i = 0; i < count; i++) {
      const chips = await texts(rows.nth(i).locator(".chip"));
      assert.ok(chips.length > 0, `recommendation ${i + 1} (${names[i]}) has no reason`);
    }
    const reasons = (await texts(rows.locator(".chip"))).join(" | ");
    assert.match(reasons, /Category perfume|Brand Aurelle|Viewed together with/,
                 `no personal reason among: ${reasons}`);
    const strategy = await page.getByTestId("recs-strategy").textContent();
    assert.match(strategy, /Strategy: personalized/, `strategy badge: "${strategy}"`);
  });

  await t.test("active alert is shown", async () => {
    const alert = page.getByTestId("alert").first();
    await alert.waitFor({ state: "visible", timeout: 20000 });
    const text = await alert.textContent();
    assert.match(text, /ui-brand-views/, `the alert does not name its rule: ${text}`);
    assert.match(text, /check its campaign and its stock/, `the alert lacks its reaction: ${text}`);
    assert.match(await page.getByTestId("alerts-count").textContent(), /[1-9]\d* active/);
  });

  await t.test("trending lists products", async () => {
    const rows = page.getByTestId("trending-body").locator("tr");
    assert.ok(await rows.count() >= 3, "fewer than 3 trending rows");
    const names = (await texts(rows.locator(".product-name"))).join(" | ");
    assert.match(names, /Aurelle Bloom No [56]/, `trending lacks the viewed perfumes: ${names}`);
    assert.ok(await rows.locator(".bar-fill").count() >= 3, "trending rows have no bars");
  });

  await t.test("API values render as text", async () => {
    // x-1 is named '<img src=x onerror=...> Markup Mist' with brand '<b>Bold</b>'.
    const trending = await page.getByTestId("trending-body").textContent();
    assert.match(trending, /<img src=x onerror="window.__xss=1"> Markup Mist/,
                 "the product name with markup is not shown as text");
    assert.match(trending, /<b>Bold<\/b>/, "the brand with markup is not shown as text");
    assert.equal(await page.locator("main img, main b").count(), 0,
                 "markup from the API became elements");
    assert.equal(await page.evaluate(() => window.__xss), undefined, "injected script ran");
  });

  await t.test("live charts draw real values", async () => {
    // Samples every 2 s: wait for a few intervals with traffic.
    await page.waitForFunction(() => {
      const ingest = document.querySelector('[data-testid="ingest-chart"]');
      const latency = document.querySelector('[data-testid="latency-chart"]');
      return Number(ingest?.dataset.points) >= 4 && Number(latency?.dataset.points) >= 4 &&
        latency.querySelector("path.series-p99") !== null;
    }, null, { timeout: 30000 });
    const rate = await page.getByTestId("ingest-now").textContent();
    const value = Number(rate.replace(/[^\d.]/g, ""));
    assert.ok(value > 0, `ingestion rate is "${rate}" while events flow`);
    assert.equal(await page.getByTestId("ingest-chart").locator("path.series-ingest").count(), 1,
                 "the ingestion chart has no line");
    const latency = await page.getByTestId("latency-now").textContent();
    assert.match(latency, /p99 \d+([.,]\d+)? ms/, `latency headline: "${latency}"`);
  });

  await t.test("English screenshot", async () => {
    await page.screenshot({ path: `${shots}/dashboard.png`, fullPage: true });
  });

  await t.test("German labels after the switch", async () => {
    await page.getByTestId("lang-de").click();
    assert.equal(await page.locator("html").getAttribute("lang"), "de");
    const headings = await texts(page.locator("main h3"));
    for (const label of ["Eingang", "Profil", "Empfehlungen jetzt", "Aktive Alarme",
                         "Produkte im Trend"]) {
      assert.ok(headings.includes(label), `German heading "${label}" missing: ${headings}`);
    }
    const reasons = (await texts(page.getByTestId("recs-body").locator(".chip"))).join(" | ");
    assert.match(reasons, /Kategorie perfume|Marke Aurelle|Zusammen angesehen mit/,
                 `reasons not in German: ${reasons}`);
    assert.match(await page.getByTestId("gender-segment").textContent(), /weiblich/);
    assert.match(await page.getByTestId("recs-strategy").textContent(), /Strategie: personalisiert/);
    await page.screenshot({ path: `${shots}/dashboard.de.png`, fullPage: true });
  });

  await t.test("German browser gets German by default", async () => {
    const german = await browser.newContext({ locale: "de-DE" });
    const p = await german.newPage();
    watch(p);
    await p.goto(url);
    await p.getByTestId("token-card").waitFor({ state: "visible", timeout: 10000 });
    assert.equal(await p.locator("html").getAttribute("lang"), "de");
    assert.equal((await p.locator("#token-card h2").textContent()).trim(), "Analysten-Token");
    await german.close();
  });

  await t.test("no script error or policy violation", () => {
    assert.deepEqual(problems, [], `the page reported:\n${problems.join("\n")}`);
  });
});
