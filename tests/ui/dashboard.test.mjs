// Drives the dashboard in Debian's headless Chromium against a vitrine that tests/ui/run.sh
// started and fed. Environment: VITRINE_UI_URL (the /ui/ address), VITRINE_UI_TOKEN (the
// analyst token), VITRINE_UI_SESSION (a session with events), VITRINE_UI_VISITOR_SESSION
// and VITRINE_UI_VISITOR (a session linked to that visitor id), VITRINE_UI_DENIED_SESSION
// (a session that refused consent), VITRINE_UI_SCREENSHOTS (a folder),
// VITRINE_UI_CHROMIUM (the browser binary). The segments file of run.sh defines
// perfume_fan, mens_shopper, markup_brand and engaged_browser.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";

const url = process.env.VITRINE_UI_URL;
const token = process.env.VITRINE_UI_TOKEN;
const session = process.env.VITRINE_UI_SESSION;
const visitorSession = process.env.VITRINE_UI_VISITOR_SESSION;
const visitor = process.env.VITRINE_UI_VISITOR;
const deniedSession = process.env.VITRINE_UI_DENIED_SESSION;
const shots = process.env.VITRINE_UI_SCREENSHOTS;
const executablePath = process.env.VITRINE_UI_CHROMIUM || "/usr/bin/chromium";

const SEGMENTS = ["perfume_fan", "mens_shopper", "markup_brand", "engaged_browser"];

for (const [name, value] of Object.entries({ url, token, session, visitorSession, visitor,
                                             deniedSession, shots })) {
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

// The explanation box of one segment in the profile view.
function explained(name) {
  return page.locator(`[data-testid="explain-segment"][data-segment="${name}"]`);
}

// Locate the line of the explained condition with this text in one segment's box: its
// text, whether it held and its value. Children of all/any/not have lines of their own.
function condition(name, text) {
  return explained(name).locator(".condition-line")
    .filter({ has: page.getByTestId("explain-text").getByText(text, { exact: true }) });
}

async function lookUpSession(id) {
  await page.getByTestId("session-input").fill(id);
  await page.getByTestId("lookup-button").click();
  await page.waitForFunction((expected) =>
    document.querySelector('[data-testid="profile-id"]')?.textContent === expected, id,
  { timeout: 10000 });
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

  await t.test("segments panel shows counts", async () => {
    // The counts come every 5 s and the panel refreshes every 15 s: wait for a member
    // count of perfume_fan, which the session and the eight perfume viewers meet.
    await page.waitForFunction(() => {
      const cell = document.querySelector(
        '[data-testid="segments-body"] tr[data-segment="perfume_fan"] [data-testid="segment-members"]');
      return cell !== null && /^[1-9][\d,.]*$/.test(cell.textContent.trim());
    }, null, { timeout: 40000 });
    const rows = page.getByTestId("segments-body").locator("tr");
    const names = await texts(rows.locator(".segment-name"));
    assert.deepEqual(names, SEGMENTS, `segment rows: ${names}`);
    const served = (await page.getByTestId("segments-body")
      .locator('tr[data-segment="perfume_fan"] [data-testid="segment-served"]').textContent()).trim();
    assert.match(served, /^[1-9][\d,.]*$/, `perfume_fan served "${served}" while the storefront asks`);
    const counted = await page.getByTestId("segments-counted").textContent();
    assert.match(counted, /^Counted .+: \d[\d,]* of \d[\d,]* profiles read$/,
                 `counted line: "${counted}"`);
    assert.match(await page.getByTestId("segments-help").textContent(), /every 5 s/);
  });

  await t.test("profile lists member segments", async () => {
    const chips = await texts(page.getByTestId("profile-segments").locator(".chip-segment"));
    for (const name of ["perfume_fan", "markup_brand", "engaged_browser"]) {
      assert.ok(chips.includes(name), `the session is not shown in ${name}: ${chips}`);
    }
    assert.ok(!chips.includes("mens_shopper"), `the session is shown in mens_shopper: ${chips}`);
    assert.equal((await page.getByTestId("profile-visitor").textContent()).trim(), "no visitor");
    assert.equal((await page.getByTestId("profile-personalized").textContent()).trim(), "yes");
  });

  await t.test("explain shows conditions and values", async () => {
    const boxes = await page.getByTestId("explain-segment").evaluateAll(
      (list) => list.map((box) => box.dataset.segment));
    assert.deepEqual(boxes, SEGMENTS, `explained segments: ${boxes}`);

    const fan = explained("perfume_fan");
    assert.equal((await fan.getByTestId("explain-member").textContent()).trim(), "member");
    assert.ok(await fan.evaluate((box) => box.open), "a member segment starts closed");
    const share = condition("perfume_fan", "category perfume share >= 0.3");
    assert.equal(await share.count(), 1, "perfume_fan lacks its category condition");
    assert.equal((await share.locator(".held-mark").textContent()).trim(), "holds");
    const value = await share.getByTestId("explain-value").textContent();
    assert.match(value, /^value 0\.\d+$/, `perfume share shown as "${value}"`);

    const mens = explained("mens_shopper");
    assert.equal((await mens.getByTestId("explain-member").textContent()).trim(), "not a member");
    assert.ok(!(await mens.evaluate((box) => box.open)), "a segment without membership starts open");
    const wishlist = condition("mens_shopper", "last add_to_wishlist within 600 s");
    assert.equal((await wishlist.locator(".held-mark").textContent()).trim(), "does not hold");
    assert.equal((await wishlist.getByTestId("explain-value").textContent()).trim(), "value none");
    const any = await texts(mens.locator(".condition-combinator"));
    assert.deepEqual(any, ["at least one of"], `the any node reads ${any}`);

    const engaged = explained("engaged_browser");
    assert.equal((await engaged.getByTestId("explain-score").textContent()).trim(),
                 "score 4 of min 3", "views (+2) and cart (+2) give 4 points");
    const points = await texts(engaged.locator(".chip"));
    assert.deepEqual(points, ["+2 points", "+2 points", "-1 points"], `point entries: ${points}`);
  });

  await t.test("markup in condition text stays text", async () => {
    const brand = condition("markup_brand", "brand <b>Bold</b> share >= 0.01");
    assert.equal(await brand.count(), 1, "the brand condition with markup is not shown as text");
    assert.equal(await page.locator("main b, main img").count(), 0,
                 "markup from a condition text became elements");
  });

  await t.test("explain box stays as the analyst set it", async () => {
    const mens = explained("mens_shopper");
    await mens.locator("summary").click();
    assert.ok(await mens.evaluate((box) => box.open), "a click does not open the box");
    // Look up the same session again, as the periodic refresh does, and wait until the
    // box is drawn anew.
    await mens.evaluate((box) => { box.dataset.before = "refresh"; });
    await page.getByTestId("lookup-button").click();
    await page.waitForFunction(() => {
      const box = document.querySelector(
        '[data-testid="explain-segment"][data-segment="mens_shopper"]');
      return box !== null && box.dataset.before === undefined;
    }, null, { timeout: 10000 });
    assert.ok(await mens.evaluate((box) => box.open), "the refresh closed the opened box");
  });

  await t.test("English screenshot", async () => {
    await page.screenshot({ path: `${shots}/dashboard.png`, fullPage: true });
    await page.getByTestId("profile-card").screenshot({ path: `${shots}/segments-profile.png` });
    await page.getByTestId("segments-card").screenshot({ path: `${shots}/segments-panel.png` });
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

  await t.test("German segments panel", async () => {
    const headings = await texts(page.getByTestId("segments-card").locator("h3, th"));
    for (const label of ["Segmente", "Segment", "Mitglieder", "Ausgeliefert"]) {
      assert.ok(headings.includes(label), `German label "${label}" missing: ${headings}`);
    }
    const counted = await page.getByTestId("segments-counted").textContent();
    assert.match(counted, /^Gezählt .+: \d[\d.]* von \d[\d.]* Profilen gelesen$/,
                 `counted line: "${counted}"`);
    const names = await texts(page.getByTestId("segments-body").locator(".segment-name"));
    assert.deepEqual(names, SEGMENTS, `segment rows: ${names}`);
    await page.getByTestId("segments-card").screenshot({ path: `${shots}/segments-panel.de.png` });
  });

  await t.test("German explain", async () => {
    assert.equal((await page.getByTestId("profile-visitor").textContent()).trim(), "kein Besucher");
    assert.equal((await page.getByTestId("profile-personalized").textContent()).trim(), "ja");
    const fan = explained("perfume_fan");
    assert.equal((await fan.getByTestId("explain-member").textContent()).trim(), "Mitglied");
    const share = condition("perfume_fan", "category perfume share >= 0.3");
    assert.equal((await share.locator(".held-mark").textContent()).trim(), "erfüllt");
    const value = await share.getByTestId("explain-value").textContent();
    assert.match(value, /^Wert 0,\d+$/, `perfume share not in German format: "${value}"`);

    const mens = explained("mens_shopper");
    assert.equal((await mens.getByTestId("explain-member").textContent()).trim(), "kein Mitglied");
    const wishlist = condition("mens_shopper", "last add_to_wishlist within 600 s");
    assert.equal((await wishlist.locator(".held-mark").textContent()).trim(), "nicht erfüllt");
    assert.equal((await wishlist.getByTestId("explain-value").textContent()).trim(), "Wert keiner");
    assert.deepEqual(await texts(mens.locator(".condition-combinator")), ["mindestens eine von"]);

    const engaged = explained("engaged_browser");
    assert.equal((await engaged.getByTestId("explain-score").textContent()).trim(),
                 "Punktzahl 4 von mindestens 3");
    await page.getByTestId("profile-card").screenshot({ path: `${shots}/segments-profile.de.png` });
  });

  await t.test("visitor of a logged-in session", async () => {
    await lookUpSession(visitorSession);
    const shown = await page.getByTestId("profile-visitor").textContent();
    assert.match(shown, new RegExp(`^${visitor} \\(verknüpft, Sitzungen: 1\\)$`),
                 `visitor shown as "${shown}"`);
    assert.equal(await page.getByTestId("profile-visitor").locator(".mono").textContent(), visitor);
  });

  await t.test("session without consent", async () => {
    await lookUpSession(deniedSession);
    assert.equal((await page.getByTestId("profile-personalized").textContent()).trim(),
                 "keine Einwilligung, nichts gespeichert");
    const reasons = await texts(page.getByTestId("explain-reason"));
    assert.deepEqual(reasons, SEGMENTS.map(() => "keine Einwilligung"), `reasons: ${reasons}`);
    assert.deepEqual(await texts(page.getByTestId("profile-segments")), ["keine"]);

    await page.getByTestId("lang-en").click();
    assert.equal((await page.getByTestId("profile-personalized").textContent()).trim(),
                 "no consent, nothing stored");
    const english = await texts(page.getByTestId("explain-reason"));
    assert.deepEqual(english, SEGMENTS.map(() => "no consent"), `reasons: ${english}`);
  });

  await t.test("session without a profile", async () => {
    await lookUpSession(`${session}-unknown`);
    const reasons = await texts(page.getByTestId("explain-reason"));
    assert.deepEqual(reasons, SEGMENTS.map(() => "no profile"), `reasons: ${reasons}`);
    assert.equal((await page.getByTestId("profile-visitor").textContent()).trim(), "no visitor");
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
