// The contract check. It starts vitrine three times against a real Redis and Kafka broker
// and feeds events, so that profiles, decisions, trending, statistics and alerts have
// content. Then it calls every operation of openapi/openapi.yaml, with successes and error
// cases, and checks each response's status, Content-Type, headers and body against the
// document.
//
//   node check.mjs   with the environment that tests/contract/run.sh sets:
//     CONTRACT_BUILD       build directory with vitrine and vitrine-replay
//     CONTRACT_SOURCE      the checkout (openapi/openapi.yaml, tests/data/catalog.jsonl)
//     CONTRACT_WORK        a directory for logs, rules and event files
//     CONTRACT_REDIS_PORT  a Redis on 127.0.0.1
//     CONTRACT_REDIS_PREFIX  the start of every Redis key the instances write
//     CONTRACT_BROKERS     Kafka bootstrap servers (each run uses its own topics)
//
// The instances:
//   main  tokens for both groups, a small alert rule, a copy of deploy/segments.example.json,
//         member counts every 5 s, fast refreshes: the normal answers, the dashboard's 304
//         and 308, and 400, 401, 404, 405, 413 and 414;
//   down  Redis at a port where nothing listens, no OpenAPI file, the same segments: 503
//         and its Retry-After, readiness 503, /openapi.yaml 404;
//   cold  the same Redis with http.on_redis_error=cold_start: storefront answers marked
//         "degraded".
// Fails when a response breaks the contract, when an operation of the document was not
// called, or when a status it documents was never seen (500 excepted, see
// NOT_TRIGGERED).

import { copyFileSync, writeFileSync } from 'node:fs';

import { Contract } from './contract.mjs';
import { Instance, freePort, produce, rawRequest, request, sleep } from './vitrine.mjs';

const env = (name) => {
    const value = process.env[name];
    if (!value)
        throw new Error(`${name} is not set; run tests/contract/run.sh BUILD_DIR`);
    return value;
};
const BUILD = env('CONTRACT_BUILD');
const SOURCE = env('CONTRACT_SOURCE');
const WORK = env('CONTRACT_WORK');
const REDIS_PORT = env('CONTRACT_REDIS_PORT');
const BROKERS = env('CONTRACT_BROKERS');
const REDIS_PREFIX = env('CONTRACT_REDIS_PREFIX');

// Statuses a document may list that no request from outside can cause: 500 comes only
// from a response above the server's 256 KiB (1 MiB for /metrics) buffer.
const NOT_TRIGGERED = { 500: 'only a response above the server\'s size limit causes it' };

const TOKENS = { storefrontToken: 'contract-storefront-token', analystToken: 'contract-analyst-token' };
const RUN = `contract-${process.pid}`;
const S1 = `${RUN}-s1`;       // the session with a full story
const S2 = `${RUN}-s2`;       // co-views for the similar products
const S3 = `${RUN}-erase`;    // erased by the DELETE case
const S4 = `${RUN}-visitor-a`; // the two sessions of VISITOR, erased with it
const S5 = `${RUN}-visitor-b`;
const S6 = `${RUN}-no-consent`; // denies consent
const VISITOR = `u-${RUN}-erase`;
const BURST = `${RUN}-burst`; // the views that raise the alert
const DECISION = '0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b';
const UNKNOWN_ALERT = '01900000-0000-7000-8000-000000000000';

const contract = new Contract(`${SOURCE}/openapi/openapi.yaml`);
const failures = [];
const coverage = new Map(); // operation key -> Map(status -> count)
let validated = 0; // responses checked against an operation or a shared response
let requests = 0;
let failedRequests = 0;

for (const { key } of contract.operations)
    coverage.set(key, new Map());

function fail(label, message) {
    failures.push(`${label}: ${message}`);
    console.error(`FAIL ${label}: ${message}`);
}

// The Authorization header for an operation: the token of the first scheme it accepts.
function authFor(key) {
    const scheme = contract.schemes(key)[0];
    return scheme ? { authorization: `Bearer ${TOKENS[scheme]}` } : {};
}

// Send one request and check its response against the operation(s) in keys (several for
// a 405, which stands for every operation of the path). c: {label, op (key or list),
// instance, method, path, headers, body, auth (default true), expect (status), then
// (function of the parsed body and the response returning a list of problems)}.
async function call(c) {
    const before = failures.length;
    const res = await send(c);
    requests++;
    if (failures.length > before)
        failedRequests++;
    return res;
}

async function send(c) {
    const keys = Array.isArray(c.op) ? c.op : [c.op];
    const method = c.method ?? keys[0].split(' ')[0];
    const headers = { ...(c.auth === false ? {} : authFor(keys[0])), ...(c.headers ?? {}) };
    let res;
    try {
        res = await request(c.instance.port, { method, path: c.path, headers, body: c.body });
    } catch (err) {
        fail(c.label, `${method} ${c.path.slice(0, 120)}: ${err.message}`);
        return null;
    }
    const target = c.path.length > 120 ? `${c.path.slice(0, 120)}...` : c.path;
    record(c.label, keys, res, `${method} ${target}`, c.expect, c.then);
    return res;
}

// Check a response to requestLine against the operations in keys, count it, and run
// then(parsed body, response) when the status is the expected one.
function record(label, keys, res, requestLine, expect, then) {
    const method = requestLine.split(' ')[0];
    if (expect !== undefined && res.status !== expect) {
        fail(label, `${requestLine}: expected ${expect}, got ${res.status} ${res.body.slice(0, 300)}`);
        return;
    }
    for (const key of keys) {
        const problems = contract.check(key, res, method);
        validated++;
        const seen = coverage.get(key);
        seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
        for (const p of problems)
            fail(label, `${requestLine} -> ${res.status} against ${key}: ${p}`);
    }
    if (then === undefined)
        return;
    let parsed = res.body;
    try {
        parsed = JSON.parse(res.body);
    } catch {
        // not JSON; then() gets the text
    }
    for (const p of then(parsed, res) ?? [])
        fail(label, `${requestLine}: ${p}`);
}

// Poll an instance until test(body) is true for a 200 JSON response; returns the body or
// throws after seconds.
async function waitUntil(instance, path, headers, seconds, test, goal) {
    const end = Date.now() + seconds * 1000;
    let last = '';
    while (Date.now() < end) {
        const res = await request(instance.port, { path, headers });
        last = `${res.status} ${res.body.slice(0, 300)}`;
        if (res.status === 200) {
            const body = JSON.parse(res.body);
            if (test(body))
                return body;
        }
        await sleep(200);
    }
    throw new Error(`${goal} not reached within ${seconds} s; last response ${last}`);
}

// ---- events ----

function events(now) {
    const at = (secondsAgo) => now - secondsAgo * 1000;
    const s1 = [
        { type: 'page_view', session_id: S1, user_id: 'u-contract-1', ts: at(60), page: '/women/perfume',
          referrer: 'https://blog.example/post', campaign: 'contract-campaign' },
        { type: 'product_view', session_id: S1, user_id: 'u-contract-1', ts: at(58), products: [{ id: 'w-1' }] },
        { type: 'product_view', session_id: S1, user_id: 'u-contract-1', ts: at(56), products: [{ id: 'w-2' }] },
        { type: 'product_image_view', session_id: S1, ts: at(55), products: [{ id: 'w-2' }] },
        { type: 'impression', session_id: S1, ts: at(54), placement: 'home', decision_id: DECISION,
          products: [{ id: 'w-3', position: 1 }, { id: 'w-4', position: 2 }, { id: 'c-1', position: 3 }] },
        { type: 'click', session_id: S1, ts: at(52), placement: 'home', decision_id: DECISION,
          products: [{ id: 'w-3', position: 1 }] },
        { type: 'add_to_cart', session_id: S1, ts: at(50), placement: 'home', decision_id: DECISION,
          products: [{ id: 'w-3', quantity: 1, position: 1 }] },
        { type: 'add_to_cart', session_id: S1, ts: at(48), products: [{ id: 'c-2', quantity: 2 }] },
        { type: 'add_to_wishlist', session_id: S1, ts: at(46), products: [{ id: 'w-5' }] },
        { type: 'checkout', session_id: S1, ts: at(44) },
        { type: 'purchase', session_id: S1, ts: at(42), order_id: 'o-contract-1', order_value: 55,
          placement: 'home', decision_id: DECISION, products: [{ id: 'w-3', quantity: 1, price: 55 }] },
        { type: 'search', session_id: S1, ts: at(40), search: 'eau de parfum' },
        { type: 'product_view', session_id: S1, ts: at(38), products: [{ id: 'w-6' }] },
    ];
    const s2 = ['w-1', 'w-2', 'c-1', 'w-1', 'w-3'].map((id, i) =>
        ({ type: 'product_view', session_id: S2, ts: at(30 - i), products: [{ id }] }));
    const s3 = [{ type: 'product_view', session_id: S3, ts: at(20), products: [{ id: 'h-1' }] }];
    const visitor = [[S4, 'w-4'], [S4, 'w-5'], [S5, 'w-6']].map(([session, id], i) =>
        ({ type: 'product_view', session_id: session, user_id: VISITOR, ts: at(36 - i),
           products: [{ id }] }));
    // The second record carries no consent value and keeps the session's "no".
    const noConsent = [
        { type: 'product_view', session_id: S6, consent: false, ts: at(33), products: [{ id: 'w-1' }] },
        { type: 'product_view', session_id: S6, ts: at(32), products: [{ id: 'w-2' }] },
    ];
    const burst = Array.from({ length: 40 }, (_, i) =>
        ({ type: 'product_view', session_id: BURST, ts: now - 40 + i,
           products: [{ id: `w-${1 + (i % 4)}` }], campaign: 'contract-campaign' }));
    return { s1, all: [...s1, ...s2, ...s3, ...visitor, ...noConsent, ...burst] };
}

// ---- instances ----

function common(name) {
    return {
        VITRINE_REDIS_PORT: REDIS_PORT,
        VITRINE_REDIS_PREFIX: `${REDIS_PREFIX}${name}:`,
        VITRINE_KAFKA_BROKERS: BROKERS,
        VITRINE_KAFKA_TOPIC: `${RUN}-${name}-events`,
        VITRINE_KAFKA_GROUP: `${RUN}-${name}`,
        VITRINE_KAFKA_DEAD_LETTER_TOPIC: `${RUN}-${name}-dead-letter`,
        VITRINE_KAFKA_CATALOG_TOPIC: `${RUN}-${name}-catalog`,
        VITRINE_KAFKA_DECISIONS_TOPIC: `${RUN}-${name}-decisions`,
        VITRINE_KAFKA_ALERTS_TOPIC: `${RUN}-${name}-alerts`,
        VITRINE_CATALOG_PATH: `${SOURCE}/tests/data/catalog.jsonl`,
        VITRINE_HTTP_OPENAPI_PATH: `${SOURCE}/openapi/openapi.yaml`,
        VITRINE_INSTANCE_ID: `${RUN}-${name}`,
        // librdkafka's mock broker lets a new group member wait for the previous member's
        // session timeout, so keep it short.
        VITRINE_KAFKA_PROPERTIES: 'session.timeout.ms=6000,heartbeat.interval.ms=500',
    };
}

async function startInstances() {
    const opts = { workDir: WORK, binary: `${BUILD}/vitrine`, pidFile: `${WORK}/pids` };
    const rules = `${WORK}/alert-rules.json`;
    writeFileSync(rules, JSON.stringify({ rules: [{
        name: 'views-burst', event: 'product_view', window_s: 10,
        condition: { type: 'above', threshold: 20 }, min_volume: 20, cooldown_s: 600,
        severity: 'warning', recipients: ['oncall@shop.example'],
        reaction: 'Contract check rule: look at the burst.' }] }));
    const segments = `${WORK}/segments.json`;
    copyFileSync(`${SOURCE}/deploy/segments.example.json`, segments);
    const deadRedis = String(await freePort());

    const main = new Instance('main', {
        ...common('main'),
        VITRINE_HTTP_TOKEN_STOREFRONT: TOKENS.storefrontToken,
        VITRINE_HTTP_TOKEN_ANALYST: TOKENS.analystToken,
        VITRINE_ALERTS_RULES_PATH: rules,
        VITRINE_ALERTS_BUCKET_S: '1',
        VITRINE_ALERTS_PERIOD_MS: '200',
        VITRINE_LIVE_REFRESH_MS: '200',
        VITRINE_SEGMENTS_PATH: segments,
        VITRINE_SEGMENTS_COUNT_INTERVAL_S: '5',
    }, opts);

    const down = new Instance('down', {
        ...common('down'),
        VITRINE_REDIS_PORT: deadRedis,
        VITRINE_REDIS_TIMEOUT_MS: '200',
        VITRINE_HTTP_OPENAPI_PATH: `${WORK}/no-such-openapi.yaml`,
        // Without segments /v1/stats/segments reads nothing from Redis and cannot fail.
        VITRINE_SEGMENTS_PATH: segments,
    }, opts);

    const cold = new Instance('cold', {
        ...common('cold'),
        VITRINE_REDIS_PORT: deadRedis,
        VITRINE_REDIS_TIMEOUT_MS: '200',
        VITRINE_HTTP_ON_REDIS_ERROR: 'cold_start',
    }, opts);

    const instances = [main, down, cold];
    for (const instance of instances)
        await instance.start();
    await Promise.all([main.waitFor('/readyz', 60), down.waitFor('/healthz', 60),
                       cold.waitFor('/healthz', 60)]);
    return instances;
}

// ---- the calls ----

// Cases every operation gets: 400 for a repeated query parameter, 413 for an announced
// body over the limit, 414 for a long query, 401 without a token and with a wrong one,
// and 405 once per path. samples: operation key -> a path that returns 200.
async function crossCutting(main, samples) {
    const doneOf405 = new Set();
    for (const { key, path: template } of contract.operations) {
        const path = samples[key];
        if (path === undefined) {
            fail(key, 'no sample path: add one to the samples in check.mjs');
            continue;
        }
        const join = path.includes('?') ? '&' : '?';
        await call({ label: `${key} repeated parameter`, op: key, instance: main, expect: 400,
                     path: `${path}${join}repeat=1&repeat=2` });
        await call({ label: `${key} body over the limit`, op: key, instance: main, expect: 413,
                     path, headers: { 'content-length': '1000000' } });
        await call({ label: `${key} long query`, op: key, instance: main, expect: 414,
                     path: `${path}${join}pad=${'a'.repeat(9000)}` });
        if (contract.needsToken(key)) {
            await call({ label: `${key} without token`, op: key, instance: main, expect: 401,
                         path, auth: false });
            await call({ label: `${key} wrong token`, op: key, instance: main, expect: 401, path,
                         auth: false, headers: { authorization: 'Bearer not-the-token' } });
        }
        if (!doneOf405.has(template)) {
            doneOf405.add(template);
            const ops = contract.operationsOfPath(template);
            const served = ops.map((o) => o.method.toUpperCase());
            const other = ['PUT', 'PATCH', 'POST', 'DELETE'].find((m) => !served.includes(m));
            await call({ label: `${template} method not allowed`, op: ops.map((o) => o.key),
                         instance: main, method: other, path, expect: 405 });
        }
    }
}

const has = (cond, message) => (cond ? [] : [message]);

// Check the segments_explain of S1 and return the problems: perfume_fan holds, and the
// example file's segments show every kind of node (a test, all, any, not) and a score.
function explained(b) {
    const list = b.segments_explain ?? [];
    const byName = new Map(list.map((e) => [e.segment, e]));
    const kinds = new Set();
    const visit = (node) => {
        kinds.add(node.of === undefined ? 'test' : node.condition);
        for (const child of node.of ?? [])
            visit(child);
    };
    for (const entry of list) {
        for (const c of entry.conditions ?? [])
            visit(c.points === undefined ? c : c.condition);
    }
    return [...has(list.length > 0, 'segments_explain is empty'),
            ...has(byName.get('perfume_fan')?.member === true, 'perfume_fan is not a member'),
            ...has(list.every((e) => e.member === b.segments.includes(e.segment)),
                   'member differs from segments'),
            ...has(byName.get('browsing_without_buying')?.score !== undefined,
                   'the score segment has no score'),
            ...['test', 'all', 'any', 'not'].flatMap((k) => has(kinds.has(k), `no ${k} node`))];
}

// Check that no entry of a segments_explain is a member and each gives reason; return the
// problems.
function noMember(b, reason) {
    const list = b.segments_explain ?? [];
    return [...has(list.length > 0, 'segments_explain is empty'),
            ...has(list.every((e) => e.member === false && e.reason === reason),
                   `not every entry has member false and reason "${reason}": ` +
                   JSON.stringify(list.slice(0, 2)))];
}

async function storefront(main) {
    const seg = 'GET /v1/sessions/{id}/segment';
    await call({ label: 'segment of a known session', op: seg, instance: main, expect: 200,
                 path: `/v1/sessions/${S1}/segment`,
                 then: (b) => [...has(b.known === true, 'known is not true'),
                               ...has(b.top_categories.length > 0, 'no top category'),
                               ...has(b.personalised === true, 'personalised is not true'),
                               ...has(b.segments.includes('perfume_fan'), `segments ${b.segments}`),
                               ...has(b.segments_explain === undefined,
                                      'segments_explain without explain')] });
    await call({ label: 'segment with explain', op: seg, instance: main, expect: 200,
                 path: `/v1/sessions/${S1}/segment?explain=true`, then: explained });
    await call({ label: 'segment with explain=1', op: seg, instance: main, expect: 200,
                 path: `/v1/sessions/${S1}/segment?explain=1`,
                 then: (b) => has(Array.isArray(b.segments_explain), 'no segments_explain') });
    await call({ label: 'segment with explain=0', op: seg, instance: main, expect: 200,
                 path: `/v1/sessions/${S1}/segment?explain=0`,
                 then: (b) => has(b.segments_explain === undefined,
                                  'segments_explain with explain=0') });
    await call({ label: 'segment with explain=maybe', op: seg, instance: main, expect: 400,
                 path: `/v1/sessions/${S1}/segment?explain=maybe` });
    await call({ label: 'segment of an unknown session with explain', op: seg, instance: main,
                 expect: 200, path: `/v1/sessions/${RUN}-never-seen/segment?explain=true`,
                 then: (b) => [...has(b.segments.length === 0, `segments ${b.segments}`),
                               ...noMember(b, 'no profile')] });
    await call({ label: 'segment of a session without consent', op: seg, instance: main,
                 expect: 200, path: `/v1/sessions/${S6}/segment?explain=true`,
                 then: (b) => [...has(b.personalised === false, 'personalised is not false'),
                               ...has(b.segments.length === 0, `segments ${b.segments}`),
                               ...noMember(b, 'no consent')] });
    await call({ label: 'segment of an unknown session', op: seg, instance: main, expect: 200,
                 path: `/v1/sessions/${RUN}-never-seen/segment`,
                 then: (b) => has(b.known === false, 'known is not false') });
    await call({ label: 'segment with the analyst token', op: seg, instance: main, expect: 200,
                 path: `/v1/sessions/${S1}/segment`,
                 headers: { authorization: `Bearer ${TOKENS.analystToken}` } });
    await call({ label: 'segment with an invalid id', op: seg, instance: main, expect: 400,
                 path: '/v1/sessions/bad*id/segment' });
    await call({ label: 'segment with %00 in the id', op: seg, instance: main, expect: 400,
                 path: '/v1/sessions/a%00b/segment' });

    const rec = 'GET /v1/sessions/{id}/recommendations';
    const recPath = (q) => `/v1/sessions/${S1}/recommendations${q}`;
    await call({ label: 'recommendations for a known session', op: rec, instance: main,
                 expect: 200, path: recPath(''),
                 then: (b) => has(b.items.length > 0, 'no item') });
    await call({ label: 'recommendations on a product page', op: rec, instance: main,
                 expect: 200,
                 path: recPath('?placement=product&product=w-1&limit=5&exclude=w-2,c-1' +
                               '&gender=female&price_min=10&price_max=100'),
                 then: (b) => has(b.placement === 'product', `placement ${b.placement}`) });
    await call({ label: 'recommendations on a category page', op: rec, instance: main,
                 expect: 200, path: recPath('?placement=category&category=perfume.women&brand=Aurelle') });
    await call({ label: 'recommendations for an unknown session', op: rec, instance: main,
                 expect: 200, path: `/v1/sessions/${RUN}-never-seen/recommendations?limit=3` });
    for (const [problem, query] of [['limit 0', '?limit=0'], ['product placement without product', '?placement=product'],
                                 ['unknown gender', '?gender=x'], ['price range reversed', '?price_min=5&price_max=1'],
                                 ['unknown placement', '?placement=nowhere']])
        await call({ label: `recommendations with ${problem}`, op: rec, instance: main, expect: 400,
                     path: recPath(query) });

    const rr = 'POST /v1/sessions/{id}/rerank';
    const rrPath = `/v1/sessions/${S1}/rerank`;
    const json = { 'content-type': 'application/json' };
    await call({ label: 'rerank', op: rr, instance: main, expect: 200, path: rrPath, headers: json,
                 body: JSON.stringify({ product_ids: ['m-2', 'w-3', 'c-1', 'not-in-catalog', 12345] }),
                 then: (b) => [...has(b.items.length === 5, `${b.items.length} items`),
                               ...has(b.items.some((i) => i.known === false), 'no unknown item')] });
    await call({ label: 'rerank without body', op: rr, instance: main, expect: 400, path: rrPath });
    await call({ label: 'rerank with a body that is not JSON', op: rr, instance: main, expect: 400,
                 path: rrPath, headers: json, body: 'not json' });
    await call({ label: 'rerank of 501 ids', op: rr, instance: main, expect: 400, path: rrPath,
                 headers: json,
                 body: JSON.stringify({ product_ids: Array.from({ length: 501 }, (_, i) => `p-${i}`) }) });
    await call({ label: 'rerank with a body over the limit', op: rr, instance: main, expect: 413,
                 path: rrPath, headers: json,
                 body: JSON.stringify({ product_ids: ['x'.repeat(100 * 1024)] }) });

    const sim = 'GET /v1/products/{id}/similar';
    await call({ label: 'similar products', op: sim, instance: main, expect: 200,
                 path: '/v1/products/w-1/similar',
                 then: (b) => has(b.from_neighbors > 0, 'no item from neighbours') });
    await call({ label: 'similar products, limit 3', op: sim, instance: main, expect: 200,
                 path: '/v1/products/w-1/similar?limit=3',
                 then: (b) => has(b.items.length <= 3, `${b.items.length} items`) });
    await call({ label: 'similar products of an unknown product', op: sim, instance: main,
                 expect: 404, path: '/v1/products/not-in-catalog/similar' });
    await call({ label: 'similar products with limit 101', op: sim, instance: main, expect: 400,
                 path: '/v1/products/w-1/similar?limit=101' });
    await call({ label: 'similar products with %00 in the id', op: sim, instance: main,
                 expect: 400, path: '/v1/products/a%00b/similar' });
    await call({ label: 'similar products with invalid UTF-8 in the id', op: sim,
                 instance: main, expect: 400, path: '/v1/products/a%FFb/similar' });
    // The 404 message repeats the id: quotes, backslashes and '/' must stay valid JSON.
    await call({ label: 'similar products of an id with quotes and a slash', op: sim,
                 instance: main, expect: 404, path: '/v1/products/a%22b%5Cc%2Fd/similar',
                 then: (b) => has(b.error.message.includes('a"b\\c/d'), `message ${b.error.message}`) });

    const tr = 'GET /v1/trending';
    await call({ label: 'trending', op: tr, instance: main, expect: 200, path: '/v1/trending',
                 then: (b) => [...has(b.items.length > 0, 'no item'),
                               ...has(b.refreshed !== null, 'refreshed is null')] });
    await call({ label: 'trending in a category for women', op: tr, instance: main, expect: 200,
                 path: '/v1/trending?category=perfume.women&gender=female&limit=5' });
    await call({ label: 'trending of an unknown brand', op: tr, instance: main, expect: 200,
                 path: '/v1/trending?brand=No%20Such%20Brand',
                 then: (b) => has(b.items.length === 0, `${b.items.length} items`) });
    await call({ label: 'trending with an unknown gender', op: tr, instance: main, expect: 400,
                 path: '/v1/trending?gender=x' });
    await call({ label: 'trending with a limit that is no number', op: tr, instance: main,
                 expect: 400, path: '/v1/trending?limit=abc' });
}

async function analyst(main) {
    const sp = 'GET /v1/stats/products/{id}';
    await call({ label: 'statistics of a product', op: sp, instance: main, expect: 200,
                 path: '/v1/stats/products/w-3',
                 then: (b) => [...has(b.known && b.impressions > 0 && b.clicks > 0, 'no impression or click'),
                               ...has(b.by_position.length > 0, 'no position'),
                               ...has(b.by_placement.length > 0, 'no placement')] });
    await call({ label: 'statistics of an unknown product', op: sp, instance: main, expect: 200,
                 path: '/v1/stats/products/not-in-catalog',
                 then: (b) => has(b.known === false, 'known is not false') });
    await call({ label: 'statistics of a product with %00 in the id', op: sp, instance: main,
                 expect: 400, path: '/v1/stats/products/a%00b' });
    await call({ label: 'statistics of a product with the storefront token', op: sp,
                 instance: main, expect: 401, path: '/v1/stats/products/w-3', auth: false,
                 headers: { authorization: `Bearer ${TOKENS.storefrontToken}` } });

    const pl = 'GET /v1/stats/placements/{name}';
    await call({ label: 'statistics of a placement', op: pl, instance: main, expect: 200,
                 path: '/v1/stats/placements/home',
                 then: (b) => has(b.known === true && b.impressions > 0, 'no impression') });
    await call({ label: 'statistics of an unknown placement', op: pl, instance: main, expect: 200,
                 path: '/v1/stats/placements/nowhere' });
    await call({ label: 'statistics of a placement name of 33 bytes', op: pl, instance: main,
                 expect: 400, path: `/v1/stats/placements/${'p'.repeat(33)}` });

    const pg = 'GET /v1/profiles/{id}';
    await call({ label: 'profile', op: pg, instance: main, expect: 200, path: `/v1/profiles/${S1}`,
                 then: (b) => [...has(b.exists === true, 'exists is not true'),
                               ...has(b.user_id !== null, 'no user id'),
                               ...has(b.recently_viewed.length > 0, 'nothing recently viewed'),
                               ...has(b.cart.length > 0, 'empty cart'),
                               ...has(b.purchased.length > 0, 'nothing purchased'),
                               ...has(b.shown.length > 0, 'nothing shown'),
                               ...has(b.personalised === true, 'personalised is not true'),
                               ...has(b.visitor?.id === 'u-contract-1',
                                      `visitor ${JSON.stringify(b.visitor)}`),
                               ...explained(b)] });
    await call({ label: 'profile without consent', op: pg, instance: main, expect: 200,
                 path: `/v1/profiles/${S6}`,
                 then: (b) => [...has(b.personalised === false, 'personalised is not false'),
                               ...noMember(b, 'no consent')] });
    await call({ label: 'profile of an unknown id', op: pg, instance: main, expect: 200,
                 path: `/v1/profiles/${RUN}-never-seen`,
                 then: (b) => [...has(b.exists === false, 'exists is not false'),
                               ...has(b.visitor === null, 'a visitor without events'),
                               ...noMember(b, 'no profile')] });
    await call({ label: 'profile with an invalid id', op: pg, instance: main, expect: 400,
                 path: '/v1/profiles/bad%7Bid%7D' });

    const pr = 'GET /v1/profiles/{id}/recommendations';
    await call({ label: 'recommendations preview', op: pr, instance: main, expect: 200,
                 path: `/v1/profiles/${S1}/recommendations`,
                 then: (b) => [...has(b.preview === true, 'preview is not true'),
                               ...has(b.items.length > 0, 'no item')] });
    await call({ label: 'recommendations preview on a product page', op: pr, instance: main,
                 expect: 200, path: `/v1/profiles/${S1}/recommendations?placement=product&product=w-1&limit=3` });
    await call({ label: 'recommendations preview with limit 0', op: pr, instance: main,
                 expect: 400, path: `/v1/profiles/${S1}/recommendations?limit=0` });

    const pd = 'DELETE /v1/profiles/{id}';
    await call({ label: 'erasure', op: pd, instance: main, expect: 200, path: `/v1/profiles/${S3}`,
                 then: (b) => has(b.deleted_keys > 0, 'no key deleted') });
    await call({ label: 'erasure of an unknown id', op: pd, instance: main, expect: 200,
                 path: `/v1/profiles/${RUN}-never-seen`,
                 then: (b) => has(b.deleted_keys === 0, `${b.deleted_keys} keys deleted`) });
    await call({ label: 'erasure with an invalid id', op: pd, instance: main, expect: 400,
                 path: '/v1/profiles/a%00b' });
}

// Member counts and served responses per segment, and the erasure of a visitor with its
// sessions.
async function segmentsAndVisitors(main) {
    const ss = 'GET /v1/stats/segments';
    await call({ label: 'segment statistics', op: ss, instance: main, expect: 200,
                 path: '/v1/stats/segments',
                 then: (b) => [...has(b.count_interval_s === 5,
                                      `count_interval_s ${b.count_interval_s}`),
                               ...has(b.segments.some((e) => e.name === 'perfume_fan'),
                                      'no perfume_fan')] });
    // The storefront calls above served S1 as a perfume_fan. Each instance adds its served
    // counts to Redis every 5 s, and the segment thread counts members every 5 s.
    const analystAuth = { authorization: `Bearer ${TOKENS.analystToken}` };
    const perfumeFan = (b) => b.segments.find((e) => e.name === 'perfume_fan');
    await waitUntil(main, '/v1/stats/segments', analystAuth, 30,
                    (b) => b.counted_at !== null && perfumeFan(b)?.members > 0 &&
                           perfumeFan(b)?.served > 0,
                    'a member count and served responses of perfume_fan');
    await call({ label: 'segment statistics after a count', op: ss, instance: main, expect: 200,
                 path: '/v1/stats/segments',
                 then: (b) => [...has(b.profiles > 0, `profiles ${b.profiles}`),
                               ...has(b.sampled > 0, `sampled ${b.sampled}`),
                               ...has(perfumeFan(b)?.members > 0, 'no member of perfume_fan')] });
    await call({ label: 'segment statistics with the storefront token', op: ss, instance: main,
                 expect: 401, path: '/v1/stats/segments', auth: false,
                 headers: { authorization: `Bearer ${TOKENS.storefrontToken}` } });

    const pg = 'GET /v1/profiles/{id}';
    await call({ label: 'profile of a visitor\'s session', op: pg, instance: main, expect: 200,
                 path: `/v1/profiles/${S4}`,
                 then: (b) => [...has(b.visitor?.id === VISITOR,
                                      `visitor ${JSON.stringify(b.visitor)}`),
                               ...has(b.visitor?.linked === true, 'not linked'),
                               // The session's snapshot counts the sessions the visitor
                               // had when this one was linked: 1 or 2 here.
                               ...has(b.visitor?.sessions >= 1 && b.visitor?.sessions <= 2,
                                      `${b.visitor?.sessions} visitor sessions`)] });

    const vd = 'DELETE /v1/visitors/{id}';
    await call({ label: 'visitor erasure', op: vd, instance: main, expect: 200,
                 path: `/v1/visitors/${VISITOR}`,
                 then: (b) => [...has(b.visitor_id === VISITOR, `visitor_id ${b.visitor_id}`),
                               ...has(b.visitors === 1, `${b.visitors} visitors`),
                               ...has(b.sessions === 2, `${b.sessions} sessions`),
                               ...has(b.deleted_keys > 0, 'no key deleted')] });
    for (const session of [S4, S5])
        await call({ label: 'profile of an erased visitor\'s session', op: pg, instance: main,
                     expect: 200, path: `/v1/profiles/${session}`,
                     then: (b) => [...has(b.exists === false, 'exists is not false'),
                                   ...has(b.visitor === null,
                                          `visitor ${JSON.stringify(b.visitor)}`)] });
    await call({ label: 'visitor erasure repeated', op: vd, instance: main, expect: 200,
                 path: `/v1/visitors/${VISITOR}`,
                 then: (b) => has(b.visitors === 0 && b.sessions === 0 && b.deleted_keys === 0,
                                  `not all zero: ${JSON.stringify(b)}`) });
    await call({ label: 'visitor erasure of an unknown visitor', op: vd, instance: main,
                 expect: 200, path: `/v1/visitors/${RUN}-never-seen`,
                 then: (b) => has(b.deleted_keys === 0, `${b.deleted_keys} keys deleted`) });
    await call({ label: 'visitor erasure with an invalid id', op: vd, instance: main, expect: 400,
                 path: '/v1/visitors/bad*id' });
    await call({ label: 'visitor erasure with %00 in the id', op: vd, instance: main, expect: 400,
                 path: '/v1/visitors/a%00b' });
    await call({ label: 'visitor erasure with the storefront token', op: vd, instance: main,
                 expect: 401, path: `/v1/visitors/${VISITOR}`, auth: false,
                 headers: { authorization: `Bearer ${TOKENS.storefrontToken}` } });
}

async function alerts(main, alertId) {
    const al = 'GET /v1/alerts';
    await call({ label: 'alerts', op: al, instance: main, expect: 200, path: '/v1/alerts',
                 then: (b) => has(b.count > 0, 'no alert') });
    await call({ label: 'alerts with every filter', op: al, instance: main, expect: 200,
                 path: '/v1/alerts?state=all&severity=warning&rule=views-burst&acknowledged=false&limit=5' });
    for (const [problem, query] of [['an unknown state', '?state=sleeping'], ['an invalid rule', '?rule=bad*rule'],
                                 ['limit 0', '?limit=0'], ['acknowledged maybe', '?acknowledged=maybe']])
        await call({ label: `alerts with ${problem}`, op: al, instance: main, expect: 400,
                     path: `/v1/alerts${query}` });

    const ag = 'GET /v1/alerts/{id}';
    await call({ label: 'one alert', op: ag, instance: main, expect: 200, path: `/v1/alerts/${alertId}` });
    await call({ label: 'an unknown alert', op: ag, instance: main, expect: 404,
                 path: `/v1/alerts/${UNKNOWN_ALERT}` });
    await call({ label: 'an alert with an invalid id', op: ag, instance: main, expect: 400,
                 path: '/v1/alerts/nope' });
    await call({ label: 'an alert with an empty id', op: ag, instance: main, expect: 400,
                 path: '/v1/alerts/' });

    const ack = 'POST /v1/alerts/{id}/ack';
    const json = { 'content-type': 'application/json' };
    await call({ label: 'acknowledgement', op: ack, instance: main, expect: 200, headers: json,
                 path: `/v1/alerts/${alertId}/ack`,
                 body: JSON.stringify({ by: 'contract', note: 'checked by the contract test' }),
                 then: (b) => has(b.ack?.by === 'contract', 'ack.by is not "contract"') });
    await call({ label: 'one alert after its acknowledgement', op: ag, instance: main, expect: 200,
                 path: `/v1/alerts/${alertId}`,
                 then: (b) => has(b.ack !== undefined, 'no ack') });
    await call({ label: 'acknowledgement without note', op: ack, instance: main, expect: 200,
                 headers: json, path: `/v1/alerts/${alertId}/ack`, body: JSON.stringify({ by: 'contract' }) });
    await call({ label: 'acknowledgement of an unknown alert', op: ack, instance: main,
                 expect: 404, headers: json, path: `/v1/alerts/${UNKNOWN_ALERT}/ack`,
                 body: JSON.stringify({ by: 'contract' }) });
    await call({ label: 'acknowledgement with a body that is not JSON', op: ack, instance: main,
                 expect: 400, headers: json, path: `/v1/alerts/${alertId}/ack`, body: 'not json' });
    await call({ label: 'acknowledgement without "by"', op: ack, instance: main, expect: 400,
                 headers: json, path: `/v1/alerts/${alertId}/ack`, body: JSON.stringify({ note: 'who?' }) });
    await call({ label: 'acknowledgement with an invalid id', op: ack, instance: main,
                 expect: 400, headers: json, path: '/v1/alerts/nope/ack', body: JSON.stringify({ by: 'x' }) });
}

// The dashboard's files: no token, the redirect, ETags and 304, unknown files.
async function dashboard(main) {
    await call({ label: 'dashboard redirect', op: 'GET /ui', instance: main, expect: 308,
                 path: '/ui', then: (_, res) => has(res.headers.location === '/ui/',
                                                      `Location ${res.headers.location}`) });
    const page = await call({ label: 'dashboard page', op: 'GET /ui/', instance: main,
                              expect: 200, path: '/ui/' });
    if (page?.headers.etag !== undefined)
        await call({ label: 'dashboard page, copy current', op: 'GET /ui/', instance: main,
                     expect: 304, path: '/ui/', headers: { 'if-none-match': page.headers.etag } });
    const file = await call({ label: 'dashboard file', op: 'GET /ui/{asset}', instance: main,
                              expect: 200, path: '/ui/dashboard.js' });
    if (file?.headers.etag !== undefined)
        await call({ label: 'dashboard file, copy current', op: 'GET /ui/{asset}', instance: main,
                     expect: 304, path: '/ui/dashboard.js',
                     headers: { 'if-none-match': file.headers.etag } });
    await call({ label: 'unknown dashboard file', op: 'GET /ui/{asset}', instance: main,
                 expect: 404, path: '/ui/no-such-file.js' });
}

async function operations(main) {
    await call({ label: 'liveness', op: 'GET /healthz', instance: main, expect: 200, path: '/healthz' });
    await call({ label: 'liveness by HEAD', op: 'GET /healthz', instance: main, method: 'HEAD',
                 expect: 200, path: '/healthz' });
    await call({ label: 'readiness', op: 'GET /readyz', instance: main, expect: 200, path: '/readyz' });
    await call({ label: 'metrics', op: 'GET /metrics', instance: main, expect: 200, path: '/metrics',
                 then: (text) => has(String(text).includes('vitrine_'), 'no vitrine_ metric') });
    await call({ label: 'the OpenAPI document', op: 'GET /openapi.yaml', instance: main,
                 expect: 200, path: '/openapi.yaml',
                 then: (_, res) => has(res.body === contract.text, 'differs from openapi/openapi.yaml') });

    // Two Content-Length headers: 400, and the connection is closed, so that what a proxy
    // may have read as a second request is never answered.
    const beforeTwice = failures.length;
    const twice = await rawRequest(main.port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
                                   'Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}' +
                                   'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    record('two Content-Length headers', ['GET /healthz'], twice, 'GET /healthz', 400,
           (_, res) => [...has(res.headers.connection === 'close', `Connection ${res.headers.connection}`),
                        ...has(twice.answers === 1, `${twice.answers} responses on the connection`)]);
    requests++;
    if (failures.length > beforeTwice)
        failedRequests++;
    await call({ label: 'more than 32 query parameters', op: 'GET /v1/trending', instance: main,
                 expect: 400,
                 path: '/v1/trending?' + Array.from({ length: 33 }, (_, i) => `p${i}=1`).join('&') });

    // A path the document does not name returns the NotFound response.
    const before = failures.length;
    const res = await request(main.port, { path: '/v1/no-such-endpoint' });
    validated++;
    requests++;
    if (res.status !== 404)
        fail('unknown path', `expected 404, got ${res.status}`);
    for (const p of contract.checkComponent('NotFound', res, 'GET'))
        fail('unknown path', p);
    if (failures.length > before)
        failedRequests++;
}

// 503 and its Retry-After from every operation that reads Redis, on the instance without
// Redis; the document's own 404 when its file is missing.
async function withoutRedis(down, cold) {
    const json = { 'content-type': 'application/json' };
    const rerankBody = JSON.stringify({ product_ids: ['w-1', 'm-1'] });
    const cases = [
        ['GET /v1/sessions/{id}/segment', `/v1/sessions/${S1}/segment`],
        ['GET /v1/sessions/{id}/recommendations', `/v1/sessions/${S1}/recommendations`],
        ['POST /v1/sessions/{id}/rerank', `/v1/sessions/${S1}/rerank`, rerankBody],
        ['GET /v1/stats/products/{id}', '/v1/stats/products/w-1'],
        ['GET /v1/stats/placements/{name}', '/v1/stats/placements/home'],
        ['GET /v1/profiles/{id}', `/v1/profiles/${S1}`],
        ['DELETE /v1/profiles/{id}', `/v1/profiles/${S1}`],
        ['GET /v1/stats/segments', '/v1/stats/segments'],
        ['DELETE /v1/visitors/{id}', `/v1/visitors/${VISITOR}`],
        ['GET /v1/profiles/{id}/recommendations', `/v1/profiles/${S1}/recommendations`],
        ['GET /v1/alerts', '/v1/alerts'],
        ['GET /v1/alerts/{id}', `/v1/alerts/${UNKNOWN_ALERT}`],
        ['POST /v1/alerts/{id}/ack', `/v1/alerts/${UNKNOWN_ALERT}/ack`, JSON.stringify({ by: 'x' })],
    ];
    for (const [key, path, body] of cases)
        await call({ label: `${key} without Redis`, op: key, instance: down, expect: 503, path,
                     body, headers: body ? json : {}, auth: false });
    await call({ label: 'readiness without Redis', op: 'GET /readyz', instance: down, expect: 503,
                 path: '/readyz' });
    await call({ label: 'the OpenAPI document when its file is missing', op: 'GET /openapi.yaml',
                 instance: down, expect: 404, path: '/openapi.yaml' });

    const degraded = (b) => has(b.degraded === true, 'degraded is not true');
    for (const [key, path, body] of cases.slice(0, 3))
        await call({ label: `${key} without Redis, cold start`, op: key, instance: cold, expect: 200,
                     path, body, headers: body ? json : {}, auth: false, then: degraded });
    await call({ label: 'profile without Redis, cold start', op: 'GET /v1/profiles/{id}',
                 instance: cold, expect: 503, path: `/v1/profiles/${S1}`, auth: false });
    await call({ label: 'recommendations preview without Redis, cold start',
                 op: 'GET /v1/profiles/{id}/recommendations', instance: cold, expect: 503,
                 path: `/v1/profiles/${S1}/recommendations`, auth: false });
}

// Paths that return 200 on the main instance, for the cross-cutting cases.
function samplePaths(alertId) {
    const samples = {
        'GET /v1/sessions/{id}/segment': `/v1/sessions/${S1}/segment`,
        'GET /v1/sessions/{id}/recommendations': `/v1/sessions/${S1}/recommendations`,
        'POST /v1/sessions/{id}/rerank': `/v1/sessions/${S1}/rerank`,
        'GET /v1/products/{id}/similar': '/v1/products/w-1/similar',
        'GET /v1/trending': '/v1/trending',
        'GET /v1/stats/products/{id}': '/v1/stats/products/w-1',
        'GET /v1/stats/placements/{name}': '/v1/stats/placements/home',
        'GET /v1/profiles/{id}': `/v1/profiles/${S1}`,
        'DELETE /v1/profiles/{id}': `/v1/profiles/${RUN}-never-seen`,
        'GET /v1/stats/segments': '/v1/stats/segments',
        'DELETE /v1/visitors/{id}': `/v1/visitors/${RUN}-never-seen`,
        'GET /v1/alerts': '/v1/alerts',
        'GET /v1/alerts/{id}': `/v1/alerts/${alertId}`,
        'POST /v1/alerts/{id}/ack': `/v1/alerts/${alertId}/ack`,
        'GET /healthz': '/healthz',
        'GET /readyz': '/readyz',
        'GET /metrics': '/metrics',
        'GET /openapi.yaml': '/openapi.yaml',
        'GET /v1/profiles/{id}/recommendations': `/v1/profiles/${S1}/recommendations`,
        'GET /ui': '/ui',
        'GET /ui/': '/ui/',
        'GET /ui/{asset}': '/ui/dashboard.js',
    };
    return samples;
}

// Print what was checked; returns the number of coverage failures (an operation never
// called, a documented status never seen).
function summary() {
    const perStatus = new Map();
    const lines = [];
    let missing = 0;
    let gaps = 0;
    for (const { key } of contract.operations) {
        const seen = coverage.get(key);
        if (seen.size === 0) {
            fail(key, 'the operation was never called');
            missing++;
            gaps++;
        }
        for (const status of contract.statuses(key)) {
            if (!seen.has(Number(status)) && NOT_TRIGGERED[status] === undefined) {
                fail(key, `documented status ${status} was never seen`);
                gaps++;
            }
        }
        for (const [status, n] of seen)
            perStatus.set(status, (perStatus.get(status) ?? 0) + n);
        const counts = [...seen].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}x${n}`).join(' ');
        lines.push(`  ${key.padEnd(42)} ${counts}`);
    }
    console.log(`\ncontract: ${contract.operations.length} operations, ` +
                `${contract.operations.length - missing} called; ${requests} requests, ` +
                `${validated} responses validated`);
    console.log(lines.join('\n'));
    console.log('  per status: ' + [...perStatus].sort((a, b) => a[0] - b[0])
        .map(([s, n]) => `${s}: ${n}`).join(', '));
    console.log(`  not triggered: ${Object.entries(NOT_TRIGGERED).map(([s, why]) => `${s} (${why})`).join('; ')}`);
    return gaps;
}

async function main() {
    const instances = await startInstances();
    const [main, down, cold] = instances;
    try {
        const now = Date.now();
        const { s1, all } = events(now);
        produce(`${BUILD}/vitrine-replay`, BROKERS, `${RUN}-main-events`, all, WORK, 'events');
        const analystAuth = { authorization: `Bearer ${TOKENS.analystToken}` };
        await waitUntil(main, `/v1/profiles/${S1}`, analystAuth, 60,
                        (b) => b.counters.events === s1.length, `all ${s1.length} events of ${S1} applied`);
        await waitUntil(main, `/v1/profiles/${S5}`, analystAuth, 30,
                        (b) => b.visitor?.linked === true, `${S5} linked to ${VISITOR}`);
        await waitUntil(main, `/v1/profiles/${S4}`, analystAuth, 30,
                        (b) => b.visitor?.linked === true, `${S4} linked to ${VISITOR}`);
        await waitUntil(main, `/v1/profiles/${S6}`, analystAuth, 30,
                        (b) => b.personalised === false, `the consent of ${S6} denied`);
        const list = await waitUntil(main, '/v1/alerts?rule=views-burst', analystAuth, 60,
                                     (b) => b.count > 0, 'an alert of rule views-burst');
        await waitUntil(main, '/v1/products/w-1/similar', analystAuth, 30,
                        (b) => b.from_neighbors > 0, 'co-viewed neighbours of w-1');
        await waitUntil(main, '/v1/stats/products/w-3', analystAuth, 30,
                        (b) => b.clicks > 0, 'a click on w-3 in the statistics');
        const alertId = list.alerts[0].id;

        await storefront(main);
        await analyst(main);
        await segmentsAndVisitors(main);
        await alerts(main, alertId);
        await operations(main);
        await dashboard(main);
        await crossCutting(main, samplePaths(alertId));
        await withoutRedis(down, cold);
    } finally {
        for (const instance of instances) {
            const status = await instance.stop();
            if (status && status.code !== 0)
                fail(`vitrine ${instance.name}`, `exit status ${status.code ?? status.signal} on ` +
                     `SIGTERM:\n${instance.logTail()}`);
        }
    }
    const gaps = summary();
    // Each request is one check, and so is each coverage gap.
    console.log(`contract: ${requests - failedRequests} passed, ${failedRequests + gaps} failed`);
    if (failures.length > 0)
        process.exit(1);
}

main().catch((err) => {
    console.error(`contract check stopped: ${err.stack ?? err}`);
    process.exit(1);
});
