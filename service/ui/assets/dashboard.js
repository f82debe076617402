// The vitrine dashboard: session lookup (profile with its analyst segments, and
// recommendations), live ingestion and latency charts from /metrics, active alerts,
// trending products and segment counts.
//
// Every value from the API is written with textContent or as an attribute, never as
// markup. The server's Content-Security-Policy also makes the browser reject HTML strings
// (Trusted Types).
"use strict";

(function () {
  const TOKEN_KEY = "vitrine.analystToken"; // sessionStorage: this tab only
  const LANG_KEY = "vitrine.language";      // localStorage: the analyst's choice
  const METRICS_PERIOD_MS = 2000;
  const REFRESH_PERIOD_MS = 15000;
  const CHART_WINDOW_MS = 5 * 60 * 1000;
  const STOREFRONT_ROUTES = ["segment", "recommendations", "rerank", "trending", "similar"];
  const SESSION_ID = /^[A-Za-z0-9._:@-]{1,128}$/;

  const texts = window.VITRINE_TEXTS;
  const charts = window.VitrineCharts;

  const state = {
    lang: "en",
    token: sessionStorage.getItem(TOKEN_KEY) || "",
    session: null,     // the session id shown
    profile: null,     // the last responses, kept to render again on a language switch
    recs: null,
    alerts: null,
    trending: null,
    segments: null,    // the last /v1/stats/segments response
    explainOpen: new Map(), // segment name -> whether the analyst opened its explanation
    previous: null,    // the previous /metrics sample
    ingest: [],        // [{t, v}] events per second
    p50: [],           // [{t, v}] milliseconds
    p99: [],
    instance: null,
    updatedAt: null,
  };

  // ---- texts ----

  function t(key, values) {
    const table = texts[state.lang] || texts.en;
    let text = table[key];
    if (text === undefined) {
      text = texts.en[key] !== undefined ? texts.en[key] : key;
    }
    return text.replace(/\{(\w+)\}/g, (whole, name) =>
      values && values[name] !== undefined ? String(values[name]) : whole);
  }

  function chooseLanguage() {
    const saved = localStorage.getItem(LANG_KEY);
    if (saved && texts[saved]) {
      return saved;
    }
    const browser = (navigator.languages && navigator.languages[0]) || navigator.language || "en";
    return browser.toLowerCase().startsWith("de") ? "de" : "en";
  }

  function number(value, digits) {
    return new Intl.NumberFormat(state.lang, {
      minimumFractionDigits: digits, maximumFractionDigits: digits,
    }).format(value);
  }

  function percent(share) {
    return new Intl.NumberFormat(state.lang, { style: "percent", maximumFractionDigits: 0 })
      .format(share);
  }

  function dateTime(iso) {
    if (!iso) {
      return "–";
    }
    return new Intl.DateTimeFormat(state.lang, { dateStyle: "medium", timeStyle: "medium" })
      .format(new Date(iso));
  }

  function timeAgo(iso) {
    const seconds = Math.round((new Date(iso).getTime() - Date.now()) / 1000);
    const format = new Intl.RelativeTimeFormat(state.lang, { numeric: "auto" });
    const abs = Math.abs(seconds);
    if (abs < 60) {
      return format.format(seconds, "second");
    }
    if (abs < 3600) {
      return format.format(Math.round(seconds / 60), "minute");
    }
    if (abs < 86400) {
      return format.format(Math.round(seconds / 3600), "hour");
    }
    return format.format(Math.round(seconds / 86400), "day");
  }

  function milliseconds(seconds) {
    const ms = seconds * 1000;
    return `${number(ms, ms < 10 ? 2 : ms < 100 ? 1 : 0)} ms`;
  }

  // ---- DOM helpers (text only) ----

  function $(id) {
    return document.getElementById(id);
  }

  function el(tag, className, text) {
    const element = document.createElement(tag);
    if (className) {
      element.className = className;
    }
    if (text !== undefined && text !== null) {
      element.textContent = String(text);
    }
    return element;
  }

  function showError(id, message) {
    const element = $(id);
    element.textContent = message || "";
    element.hidden = !message;
  }

  function applyTexts() {
    document.documentElement.lang = state.lang;
    for (const element of document.querySelectorAll("[data-i18n]")) {
      element.textContent = t(element.dataset.i18n);
    }
    for (const element of document.querySelectorAll("[data-i18n-placeholder]")) {
      element.placeholder = t(element.dataset.i18nPlaceholder);
    }
    for (const button of document.querySelectorAll(".lang-switch button")) {
      button.setAttribute("aria-pressed", String(button.dataset.lang === state.lang));
    }
    document.title = `vitrine · ${t("app.subtitle")}`;
    renderAll();
  }

  // ---- API ----

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(path) {
    const headers = { Accept: "application/json" };
    if (state.token) {
      headers.Authorization = `Bearer ${state.token}`;
    }
    const response = await fetch(path, { headers, cache: "no-store" });
    let body = null;
    try {
      body = await response.json();
    } catch (e) {
      body = null;
    }
    if (response.status === 401) {
      // Without a token this is how the page learns that it needs one: no error shown.
      const message = state.token ? t("token.rejected") : "";
      askForToken(message);
      throw new ApiError(401, message || t("token.title"));
    }
    if (!response.ok) {
      const message = body && body.error && body.error.message
        ? body.error.message : `HTTP ${response.status}`;
      throw new ApiError(response.status,
                         response.status === 503 ? t("error.unavailable") : message);
    }
    return body;
  }

  function askForToken(message) {
    $("token-card").hidden = false;
    $("token-change").hidden = true;
    showError("token-error", message || "");
    $("token-input").focus();
  }

  // ---- live charts from /metrics ----

  function sumOf(samples, name, filter) {
    let total = 0;
    for (const s of samples) {
      if (s.name === name && (!filter || filter(s.labels))) {
        total += s.value;
      }
    }
    return total;
  }

  // Cumulative storefront latency buckets, summed over the routes: Map le -> count.
  function latencyBuckets(samples) {
    const buckets = new Map();
    for (const s of samples) {
      if (s.name === "vitrine_http_request_duration_seconds_bucket" &&
          STOREFRONT_ROUTES.includes(s.labels.route)) {
        const le = s.labels.le === "+Inf" ? Infinity : Number(s.labels.le);
        buckets.set(le, (buckets.get(le) || 0) + s.value);
      }
    }
    return buckets;
  }

  function pushPoint(list, point) {
    list.push(point);
    while (list.length > 0 && list[0].t < point.t - CHART_WINDOW_MS) {
      list.shift();
    }
  }

  async function pollMetrics() {
    let text;
    try {
      const response = await fetch("/metrics", { cache: "no-store" });
      if (!response.ok) {
        throw new Error(`HTTP ${response.status}`);
      }
      text = await response.text();
    } catch (e) {
      $("instance-status").textContent = t("live.metrics_failed", { error: e.message });
      return;
    }
    const samples = charts.parseMetrics(text);
    const now = Date.now();
    const sample = {
      t: now,
      events: sumOf(samples, "vitrine_events_total"),
      buckets: latencyBuckets(samples),
    };
    const build = samples.find((s) => s.name === "vitrine_build_info");
    state.instance = {
      version: build ? build.labels.version : "?",
      products: sumOf(samples, "vitrine_catalog_products"),
    };

    // NOTE: /metrics is the one instance's. Behind a load balancer that spreads the polls
    // over several instances, the differences mix their counters and the charts are wrong.
    const previous = state.previous;
    state.previous = sample;
    if (previous !== null) {
      const seconds = (sample.t - previous.t) / 1000;
      const events = sample.events - previous.events;
      // A restarted instance starts its counters at 0: skip that interval.
      if (seconds > 0 && events >= 0) {
        pushPoint(state.ingest, { t: now, v: events / seconds });
      }
      const increases = [];
      let reset = false;
      for (const [le, count] of [...sample.buckets.entries()].sort((a, b) => a[0] - b[0])) {
        const increase = count - (previous.buckets.get(le) || 0);
        reset = reset || increase < 0;
        increases.push({ le, count: increase });
      }
      if (!reset) {
        const p50 = charts.histogramQuantile(0.5, increases);
        const p99 = charts.histogramQuantile(0.99, increases);
        pushPoint(state.p50, { t: now, v: p50 === null ? null : p50 * 1000 });
        pushPoint(state.p99, { t: now, v: p99 === null ? null : p99 * 1000 });
      }
    }
    renderLive();
  }

  // The charts' time span: from the first sample, at least one minute, at most
  // CHART_WINDOW_MS, so that a page opened a moment ago does not draw a sliver.
  function chartWindow(now) {
    const first = state.ingest.length > 0 ? state.ingest[0].t : now;
    return Math.min(CHART_WINDOW_MS, Math.max(60000, now - first));
  }

  function renderLive() {
    const now = Date.now();
    const windowMs = chartWindow(now);
    if (state.instance) {
      $("instance-status").textContent = t("live.instance", {
        version: state.instance.version, products: number(state.instance.products, 0),
      });
    }

    const lastIngest = state.ingest[state.ingest.length - 1];
    $("ingest-now").textContent = lastIngest
      ? t("live.per_second", { value: number(lastIngest.v, lastIngest.v < 10 ? 1 : 0) }) : "–";
    charts.drawLineChart($("ingest-chart"), [
      { label: t("live.events_per_s"), className: "series-ingest", points: state.ingest },
    ], {
      now, windowMs, label: t("live.ingest"), nowLabel: t("live.now"),
      format: (v) => number(v, v < 10 && v > 0 ? 1 : 0), emptyText: t("live.collecting"),
    });

    const lastP50 = state.p50[state.p50.length - 1];
    const lastP99 = state.p99[state.p99.length - 1];
    $("latency-now").textContent = lastP99 && lastP99.v !== null
      ? `${t("live.p99")} ${milliseconds(lastP99.v / 1000)}`
      : (lastP50 ? t("live.no_requests") : "–");
    charts.drawLineChart($("latency-chart"), [
      { label: t("live.p50"), className: "series-p50", points: state.p50 },
      { label: t("live.p99"), className: "series-p99", points: state.p99 },
    ], {
      now, windowMs, label: t("live.latency"), nowLabel: t("live.now"),
      format: (v) => `${number(v, v < 1 && v > 0 ? 2 : v < 10 && v > 0 ? 1 : 0)} ms`,
      emptyText: state.previous === null || state.p50.length === 0
        ? t("live.collecting") : t("live.no_requests"),
    });
  }

  // ---- session ----

  async function lookUp(id) {
    showError("lookup-error", "");
    if (!SESSION_ID.test(id)) {
      showError("lookup-error", t("lookup.invalid"));
      return;
    }
    if (state.session !== id) {
      state.explainOpen.clear();
    }
    state.session = id;
    const path = encodeURIComponent(id);
    try {
      const [profile, recs] = await Promise.all([
        api(`/v1/profiles/${path}`),
        api(`/v1/profiles/${path}/recommendations?placement=home&limit=10`),
      ]);
      if (state.session !== id) {
        return; // another lookup started meanwhile
      }
      state.profile = profile;
      state.recs = recs;
      history.replaceState(null, "", `#session=${path}`);
      renderSession();
      stamp();
    } catch (e) {
      // After a 401 the token form is open, and saving a token repeats this lookup.
      if (e.status !== 401) {
        showError("lookup-error", t("error.load", { what: t("what.profile"), error: e.message }));
      }
    }
  }

  function renderSession() {
    const view = $("session-view");
    if (!state.profile) {
      view.hidden = true;
      return;
    }
    view.hidden = false;
    $("lookup-empty").hidden = true;
    renderProfile(state.profile);
    renderRecommendations(state.recs);
  }

  function fact(list, label, value, testId) {
    const dt = el("dt", null, label);
    const dd = el("dd", null, value);
    if (testId) {
      dd.dataset.testid = testId;
    }
    list.append(dt, dd);
  }

  function renderProfile(p) {
    const known = $("profile-known");
    known.textContent = p.exists ? t("profile.known") : t("profile.unknown");
    known.className = `badge ${p.exists ? "badge-ok" : "badge-muted"}`;

    const facts = $("profile-facts");
    facts.replaceChildren();
    fact(facts, "ID", p.id, "profile-id");
    if (p.user_id) {
      fact(facts, t("profile.user"), p.user_id);
    }
    fact(facts, t("profile.events"), number(p.counters.events, 0), "profile-events");
    const byType = Object.entries(p.counters)
      .filter(([name, count]) => name !== "events" && count > 0)
      .map(([name, count]) => `${name} ${number(count, 0)}`).join(", ");
    fact(facts, t("profile.counters"), byType || t("profile.none"));
    fact(facts, t("profile.first_seen"), dateTime(p.first_seen));
    fact(facts, t("profile.last_seen"), p.last_seen
      ? `${dateTime(p.last_seen)} (${timeAgo(p.last_seen)})` : "–");
    if (p.revenue > 0) {
      fact(facts, t("profile.revenue"), number(p.revenue, 2));
    }
    visitorFact(facts, p.visitor);
    fact(facts, t("profile.personalized"),
         p.personalised ? t("profile.personalized_yes") : t("profile.personalized_no"),
         "profile-personalized");

    renderGender(p.gender);
    renderSegments(p);
    renderBars($("bars-categories"), p.categories);
    renderBars($("bars-brands"), p.brands);
    renderBars($("bars-tiers"), p.price_tiers);
    if (p.explain) {
      $("affinity-weights").textContent = t("profile.weights", {
        weights: p.explain.intent_weights,
        half_life: `${number(p.explain.half_life_s / 3600, 1)} h`,
      });
    }

    const recent = $("recent-views");
    recent.replaceChildren();
    for (const view of p.recently_viewed) {
      const item = el("li");
      item.append(el("span", "mono", view.product_id), el("span", "muted", timeAgo(view.at)));
      recent.appendChild(item);
    }
    if (p.recently_viewed.length === 0) {
      recent.appendChild(el("li", "muted", t("profile.none")));
    }

    const cart = $("cart");
    cart.replaceChildren();
    for (const line of p.cart) {
      const item = el("li");
      item.append(el("span", "mono", line.product_id),
                  el("span", "muted", t("profile.quantity", { count: line.quantity })));
      cart.appendChild(item);
    }
    if (p.cart.length === 0) {
      cart.appendChild(el("li", "muted", t("profile.none")));
    }

    const bought = $("purchased");
    bought.replaceChildren();
    for (const buy of p.purchased) {
      const item = el("li");
      item.append(el("span", "mono", buy.product_id), el("span", "muted", timeAgo(buy.at)));
      bought.appendChild(item);
    }
    if (p.purchased.length === 0) {
      bought.appendChild(el("li", "muted", t("profile.none")));
    }
  }

  function visitorFact(list, visitor) {
    const dt = el("dt", null, t("profile.visitor"));
    const dd = el("dd");
    dd.dataset.testid = "profile-visitor";
    if (!visitor) {
      dd.textContent = t("profile.no_visitor");
    } else {
      const detail = visitor.linked
        ? t("profile.visitor_linked", { count: number(visitor.sessions, 0) })
        : t("profile.visitor_unlinked");
      dd.append(el("span", "mono", visitor.id), " ", el("span", "muted", `(${detail})`));
    }
    list.append(dt, dd);
  }

  // ---- analyst segments of the profile ----

  function renderSegments(p) {
    const chips = $("profile-segments");
    chips.replaceChildren();
    for (const name of p.segments || []) {
      chips.appendChild(el("span", "chip chip-segment", name));
    }
    if (!p.segments || p.segments.length === 0) {
      chips.appendChild(el("span", "muted", t("profile.none")));
    }

    const explain = $("segments-explain");
    explain.replaceChildren();
    const list = p.segments_explain || [];
    if (list.length === 0) {
      explain.appendChild(el("p", "muted small", t("explain.empty")));
    }
    for (const segment of list) {
      explain.appendChild(explainSegment(segment));
    }
  }

  // One segment as a collapsible box: the summary shows membership, the body the
  // condition tree. The analyst's open or closed choice survives the periodic refresh.
  function explainSegment(segment) {
    const box = el("details", segment.member ? "explain-segment is-member" : "explain-segment");
    box.dataset.testid = "explain-segment";
    box.dataset.segment = segment.segment;
    const openByDefault = segment.member === true;
    const opened = state.explainOpen.get(segment.segment);
    box.open = opened !== undefined ? opened : openByDefault;
    box.addEventListener("toggle", () => {
      if (box.open === openByDefault) {
        state.explainOpen.delete(segment.segment);
      } else {
        state.explainOpen.set(segment.segment, box.open);
      }
    });

    const summary = el("summary");
    summary.appendChild(el("span", "explain-name mono", segment.segment));
    const badge = el("span", `badge ${segment.member ? "badge-ok" : "badge-muted"}`,
                     segment.member ? t("explain.member") : t("explain.not_member"));
    badge.dataset.testid = "explain-member";
    summary.appendChild(badge);
    if (segment.score !== undefined) {
      const score = el("span", "explain-score", t("explain.score", {
        score: conditionNumber(segment.score), min: conditionNumber(segment.min),
      }));
      score.dataset.testid = "explain-score";
      summary.appendChild(score);
    }
    if (segment.reason) {
      const reason = el("span", "muted", explainReason(segment.reason));
      reason.dataset.testid = "explain-reason";
      summary.appendChild(reason);
    }
    box.appendChild(summary);

    if (segment.conditions && segment.conditions.length > 0) {
      const tree = el("ul", "explain-tree");
      for (const node of segment.conditions) {
        tree.appendChild(node.points !== undefined
          ? conditionItem(node.condition, pointsLabel(node.points), node.held)
          : conditionItem(node));
      }
      box.appendChild(tree);
    }
    return box;
  }

  // One condition and, for all/any/not, its children. A score segment's point entry
  // passes its points as prefix and whether they count as held.
  function conditionItem(node, prefix, pointsHeld) {
    const held = pointsHeld !== undefined ? pointsHeld : node.held;
    const item = el("li", `condition ${held ? "condition-held" : "condition-failed"}`);
    item.dataset.testid = "explain-condition";
    const line = el("div", "condition-line");
    line.appendChild(el("span", `held-mark ${held ? "held-yes" : "held-no"}`,
                        held ? t("explain.held") : t("explain.not_held")));
    if (prefix) {
      line.appendChild(prefix);
    }

    const combinator = node.of ? combinatorText(node.condition) : null;
    const text = el("span", combinator ? "condition-combinator" : "condition-text mono",
                    combinator || node.condition);
    text.dataset.testid = "explain-text";
    line.appendChild(text);
    if (!node.of) {
      const value = el("span", "condition-value muted", t("explain.value", {
        value: node.value === null || node.value === undefined
          ? t("explain.no_value") : conditionNumber(node.value, node.condition),
      }));
      value.dataset.testid = "explain-value";
      line.appendChild(value);
    }
    item.appendChild(line);

    if (node.of) {
      const children = el("ul", "explain-tree");
      for (const child of node.of) {
        children.appendChild(conditionItem(child));
      }
      item.appendChild(children);
    }
    return item;
  }

  function pointsLabel(points) {
    const text = new Intl.NumberFormat(state.lang, {
      signDisplay: "exceptZero", maximumFractionDigits: 2,
    }).format(points);
    return el("span", `chip ${points < 0 ? "points-minus" : "points-plus"}`,
              t("explain.points", { points: text }));
  }

  // Translates the keywords "all", "any" and "not" of the segments file. Other texts are
  // shown as the server sent them.
  function combinatorText(condition) {
    const key = `explain.${condition}`;
    return texts.en[key] !== undefined ? t(key) : condition;
  }

  // Formats an observed value for the language: whole numbers without decimals, values
  // below 10 (shares, probabilities) with up to three, larger ones with up to one. The
  // value of a "last" condition is seconds since that event, so it gets the unit.
  function conditionNumber(value, condition) {
    const abs = Math.abs(value);
    let digits = 0;
    if (!Number.isInteger(value) && abs < 10) {
      digits = 3;
    } else if (!Number.isInteger(value) && abs < 1000) {
      digits = 1;
    }
    const text = new Intl.NumberFormat(state.lang, { maximumFractionDigits: digits })
      .format(value);
    return condition && condition.startsWith("last ") ? `${text} s` : text;
  }

  function explainReason(reason) {
    const key = `explain.reason.${reason}`;
    return texts.en[key] !== undefined ? t(key) : reason;
  }

  function segmentName(segment) {
    if (segment === "female") {
      return t("profile.female");
    }
    if (segment === "male") {
      return t("profile.male");
    }
    return t("profile.unknown_segment");
  }

  function renderGender(g) {
    const box = $("gender");
    box.replaceChildren();

    const head = el("div", "gender-head");
    const badge = el("span", `badge segment-${g.segment}`,
                     t("profile.segment", { segment: segmentName(g.segment) }));
    badge.dataset.testid = "gender-segment";
    const probability = el("span", "gender-probability",
                           t("profile.probability", { value: percent(g.probability) }));
    probability.dataset.testid = "gender-probability";
    head.append(badge, probability);

    const split = el("div", "split-bar");
    split.title = g.explain || "";
    const female = el("div", "split-female");
    female.style.width = `${(g.p_female * 100).toFixed(1)}%`;
    const male = el("div", "split-male");
    male.style.width = `${((1 - g.p_female) * 100).toFixed(1)}%`;
    split.append(female, male);

    const legend = el("div", "split-legend");
    const femaleLabel = el("span", "legend-female",
                           `${t("profile.female")} ${percent(g.p_female)}`);
    femaleLabel.dataset.testid = "gender-female";
    const maleLabel = el("span", "legend-male", `${t("profile.male")} ${percent(1 - g.p_female)}`);
    legend.append(femaleLabel, maleLabel);

    const evidence = el("p", "muted small", t("profile.evidence", { count: g.evidence }));
    box.append(head, split, legend, evidence);
  }

  function renderBars(container, list) {
    container.replaceChildren();
    if (!list || list.length === 0) {
      container.appendChild(el("p", "muted small", t("profile.none")));
      return;
    }
    for (const entry of list.slice(0, 8)) {
      const row = el("div", "bar-row");
      row.title = `score ${number(entry.score, 3)}`;
      const track = el("div", "bar-track");
      const fill = el("div", "bar-fill");
      fill.style.width = `${Math.max(1, entry.share * 100).toFixed(1)}%`;
      track.appendChild(fill);
      row.append(el("span", "bar-label", entry.name), track,
                 el("span", "bar-value", percent(entry.share)));
      container.appendChild(row);
    }
  }

  // "category:makeup" -> "Category makeup"; unknown reasons are shown as they are.
  function reasonText(reason) {
    const colon = reason.indexOf(":");
    const kind = colon < 0 ? reason : reason.slice(0, colon);
    const value = colon < 0 ? "" : reason.slice(colon + 1);
    const key = `reason.${kind}`;
    if (texts.en[key] === undefined) {
      return reason;
    }
    return t(key, { value: kind === "gender" ? segmentName(value) : value });
  }

  function productCell(item) {
    const cell = el("td", "product");
    cell.appendChild(el("div", "product-name", item.name || item.product_id));
    const detail = [item.product_id, item.brand].filter(Boolean).join(" · ");
    cell.appendChild(el("div", "muted small mono", detail));
    return cell;
  }

  function renderRecommendations(r) {
    const strategy = $("recs-strategy");
    const name = t(`strategy.${r.strategy}`);
    strategy.textContent = t("recs.strategy", { strategy: name }) +
      (r.control ? ` · ${t("recs.control")}` : "");

    const body = $("recs-body");
    body.replaceChildren();
    for (const item of r.items) {
      const row = el("tr");
      row.appendChild(el("td", "num", item.position));
      row.appendChild(productCell(item));
      row.appendChild(el("td", "num", item.price !== undefined ? number(item.price, 2) : "–"));
      row.appendChild(el("td", "num", number(item.score, 3)));
      const reasons = el("td", "reasons");
      for (const reason of item.reasons) {
        const chip = el("span", `chip chip-${reason.split(":")[0]}`, reasonText(reason));
        chip.title = reason;
        reasons.appendChild(chip);
      }
      row.appendChild(reasons);
      body.appendChild(row);
    }
    if (r.items.length === 0) {
      const row = el("tr");
      const cell = el("td", "muted", t("recs.empty"));
      cell.colSpan = 5;
      row.appendChild(cell);
      body.appendChild(row);
    }
  }

  // ---- alerts and trending ----

  async function loadPanels() {
    const [alerts, trending, segments] = await Promise.allSettled([
      api("/v1/alerts?state=active&limit=20"),
      api("/v1/trending?limit=10"),
      api("/v1/stats/segments"),
    ]);
    // A 401 leaves a panel empty: the token form above explains what is missing.
    const failed = (result, what) => (result.reason.status === 401 ? null
      : { error: t("error.load", { what: t(what), error: result.reason.message }) });
    state.alerts = alerts.status === "fulfilled" ? alerts.value : failed(alerts, "what.alerts");
    state.trending = trending.status === "fulfilled" ? trending.value
      : failed(trending, "what.trending");
    state.segments = segments.status === "fulfilled" ? segments.value
      : failed(segments, "what.segments");
    renderAlerts();
    renderTrending();
    renderSegmentStats();
    stamp();
  }

  function renderAlerts() {
    const list = $("alerts-list");
    const count = $("alerts-count");
    list.replaceChildren();
    const a = state.alerts;
    if (!a) {
      return;
    }
    if (a.error) {
      list.appendChild(el("p", "error", a.error));
      count.textContent = "";
      return;
    }
    count.textContent = t("alerts.count", { count: a.alerts.length });
    count.className = `badge ${a.alerts.length > 0 ? "badge-warn" : "badge-ok"}`;
    if (a.alerts.length === 0) {
      list.appendChild(el("p", "muted", t("alerts.none")));
      return;
    }
    for (const alert of a.alerts) {
      const box = el("div", `alert alert-${alert.severity}`);
      box.dataset.testid = "alert";
      const head = el("div", "alert-head");
      head.append(el("span", `chip severity-${alert.severity}`, t(`severity.${alert.severity}`)),
                  el("strong", "alert-summary", alert.summary));
      box.appendChild(head);

      const meta = [t("alerts.fired", { time: timeAgo(alert.fired_at) }),
                    t("alerts.rule", { rule: alert.rule })];
      if (alert.cause) {
        meta.push(t("alerts.cause", { cause: alert.cause }));
      }
      if (alert.ack) {
        meta.push(t("alerts.acknowledged", { by: alert.ack.by }));
      }
      box.appendChild(el("p", "muted small", meta.join(" · ")));

      if (alert.drivers && alert.drivers.length > 0) {
        box.appendChild(el("h5", null, t("alerts.drivers")));
        const drivers = el("ul", "drivers");
        for (const d of alert.drivers.slice(0, 4)) {
          drivers.appendChild(el("li", null, t("alerts.driver", {
            dimension: d.dimension, value: d.value,
            before: percent(d.share_before), during: percent(d.share_during),
          })));
        }
        box.appendChild(drivers);
      }
      if (alert.reaction) {
        box.appendChild(el("h5", null, t("alerts.reaction")));
        box.appendChild(el("p", "reaction", alert.reaction));
      }
      list.appendChild(box);
    }
  }

  function renderTrending() {
    const body = $("trending-body");
    body.replaceChildren();
    const tr = state.trending;
    if (!tr) {
      return;
    }
    if (tr.error || tr.items.length === 0) {
      const row = el("tr");
      const cell = el("td", tr.error ? "error" : "muted", tr.error || t("trending.empty"));
      cell.colSpan = 4;
      row.appendChild(cell);
      body.appendChild(row);
      return;
    }
    const top = Math.max(...tr.items.map((i) => i.score), 0) || 1;
    for (const item of tr.items) {
      const row = el("tr");
      row.appendChild(el("td", "num", item.position));
      row.appendChild(productCell(item));
      row.appendChild(el("td", "num", item.price !== undefined ? number(item.price, 2) : "–"));
      const cell = el("td", "trend-cell");
      cell.title = `score ${number(item.score, 3)}`;
      const track = el("div", "bar-track");
      const fill = el("div", "bar-fill bar-trend");
      fill.style.width = `${Math.max(1, (item.score / top) * 100).toFixed(1)}%`;
      track.appendChild(fill);
      cell.appendChild(track);
      row.appendChild(cell);
      body.appendChild(row);
    }
  }

  function renderSegmentStats() {
    const body = $("segments-body");
    const counted = $("segments-counted");
    const help = $("segments-help");
    body.replaceChildren();
    const s = state.segments;
    if (!s) {
      return;
    }
    const emptyRow = (className, text) => {
      const row = el("tr");
      const cell = el("td", className, text);
      cell.colSpan = 3;
      row.appendChild(cell);
      body.appendChild(row);
    };
    if (s.error) {
      counted.textContent = "";
      help.textContent = "";
      emptyRow("error", s.error);
      return;
    }

    if (s.segments.length === 0) {
      counted.textContent = "";
      help.textContent = "";
      emptyRow("muted", t("segments.empty"));
      return;
    }
    help.textContent = t("segments.help", { interval: number(s.count_interval_s, 0) });
    counted.textContent = s.counted_at
      ? t("segments.counted_at", {
        time: `${dateTime(s.counted_at)} (${timeAgo(s.counted_at)})`,
        sampled: number(s.sampled, 0), profiles: number(s.profiles, 0),
      })
      : t("segments.never_counted", { interval: number(s.count_interval_s, 0) });
    for (const segment of s.segments) {
      const row = el("tr");
      row.dataset.segment = segment.name;
      row.appendChild(el("td", "mono segment-name", segment.name));
      const members = segment.members === null
        ? el("td", "num muted", t("segments.not_counted"))
        : el("td", "num", number(segment.members, 0));
      members.dataset.testid = "segment-members";
      row.appendChild(members);
      const served = el("td", "num", number(segment.served, 0));
      served.dataset.testid = "segment-served";
      row.appendChild(served);
      body.appendChild(row);
    }
  }

  function stamp() {
    state.updatedAt = new Date();
    $("updated-at").textContent = t("footer.updated", {
      time: new Intl.DateTimeFormat(state.lang, { timeStyle: "medium" }).format(state.updatedAt),
    });
  }

  function renderAll() {
    renderLive();
    if (state.profile) {
      renderSession();
    }
    renderAlerts();
    renderTrending();
    renderSegmentStats();
    if (state.updatedAt) {
      $("updated-at").textContent = t("footer.updated", {
        time: new Intl.DateTimeFormat(state.lang, { timeStyle: "medium" })
          .format(state.updatedAt),
      });
    }
  }

  // ---- start ----

  function start() {
    state.lang = chooseLanguage();

    for (const button of document.querySelectorAll(".lang-switch button")) {
      button.addEventListener("click", () => {
        state.lang = button.dataset.lang;
        localStorage.setItem(LANG_KEY, state.lang);
        applyTexts();
      });
    }
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      state.token = $("token-input").value.trim();
      sessionStorage.setItem(TOKEN_KEY, state.token);
      $("token-input").value = "";
      $("token-card").hidden = true;
      $("token-change").hidden = false;
      showError("token-error", "");
      loadPanels();
      if (state.session) {
        lookUp(state.session);
      }
    });
    $("token-change").addEventListener("click", () => askForToken(""));
    $("lookup-form").addEventListener("submit", (event) => {
      event.preventDefault();
      lookUp($("session-input").value.trim());
    });

    applyTexts();
    $("token-change").hidden = state.token === "";

    const hash = /^#session=(.+)$/.exec(location.hash);
    if (hash) {
      $("session-input").value = decodeURIComponent(hash[1]);
    }
    // The first data calls show whether a token is needed, because a 401 opens the token form.
    loadPanels().then(() => {
      if (hash && $("token-card").hidden) {
        lookUp($("session-input").value);
      }
    });
    pollMetrics();
    setInterval(pollMetrics, METRICS_PERIOD_MS);
    setInterval(() => {
      if (!$("token-card").hidden) {
        return;
      }
      loadPanels();
      if (state.session && state.profile) {
        lookUp(state.session);
      }
    }, REFRESH_PERIOD_MS);
  }

  document.addEventListener("DOMContentLoaded", start);
})();
