// Structural checks of vitrine's deployment files against the real binary: the Dockerfile,
// docker-compose.yml with its connector config, the Kubernetes manifests in deploy/k8s and
// the monitoring files in deploy/monitoring. tests/deploy/run.sh runs it in two steps:
//
//   node check.mjs env ROOT                      print the Kubernetes ConfigMap and Secret
//                                                as shell assignments (to start vitrine)
//   node check.mjs check ROOT WORK BASE_URL BIN_DIR
//                                                run every check; WORK contains the outputs of
//                                                vitrine --help, vitrine-replay --help,
//                                                vitrine-catalog --help and a /metrics page;
//                                                BIN_DIR the built programs
//
// Each failure names the file, the object and what to change. Exit status: 0 when every
// check passed, 1 otherwise.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseAllDocuments, parse as parseYaml } from 'yaml';

// ---- results ----

const results = [];

function check(name, fn) {
    const problems = [];
    try {
        fn((message) => problems.push(message));
    } catch (error) {
        problems.push(`the check itself failed: ${error.stack || error}`);
    }
    results.push({ name, problems });
}

function report() {
    let failed = 0;
    for (const r of results) {
        if (r.problems.length === 0) {
            console.log(`ok    ${r.name}`);
            continue;
        }
        failed++;
        console.log(`FAIL  ${r.name}`);
        for (const p of r.problems)
            console.log(`      - ${p}`);
    }
    console.log(`deploy: ${results.length - failed} passed, ${failed} failed`);
    return failed === 0 ? 0 : 1;
}

// ---- inputs ----

function readText(file) {
    return fs.readFileSync(file, 'utf8');
}

function readYaml(file) {
    return parseYaml(readText(file), { merge: true });
}

// Settings from `vitrine --help`: env name -> {name, type, def, secret}.
function parseHelp(text) {
    const settings = new Map();
    const blocks = text.split(/\n(?=  --)/);
    for (const block of blocks) {
        const head = block.match(/^  --([a-z0-9-]+) \((\w+)\)\n\s+env (VITRINE_[A-Z0-9_]+)\n\s+default: (.*)/);
        if (!head)
            continue;
        const secret = head[4].startsWith('empty (secret');
        const def = secret ? '' : (head[4].match(/^"(.*?)"; accepts/) || [null, ''])[1];
        settings.set(head[3], { flag: head[1], type: head[2], def, secret });
    }
    return settings;
}

// Flags a tool's --help lists ("--topic NAME", "-o, --output FILE").
function parseToolFlags(text) {
    return new Set([...text.matchAll(/(?:^|[\s,])(--?[a-z][a-z0-9-]*)/gm)].map((m) => m[1]));
}

// Instructions of a Dockerfile, with continuation lines joined, split into stages.
function parseDockerfile(text) {
    const joined = text.replace(/\\\n/g, ' ');
    const stages = [];
    for (const raw of joined.split('\n')) {
        const line = raw.trim();
        if (line === '' || line.startsWith('#'))
            continue;
        const m = line.match(/^(\w+)\s+(.*)$/);
        if (!m)
            continue;
        const instruction = m[1].toUpperCase();
        if (instruction === 'FROM')
            stages.push({ from: m[2], instructions: [] });
        if (stages.length > 0)
            stages[stages.length - 1].instructions.push({ instruction, args: m[2] });
    }
    return stages;
}

// Worst-case stop time in ms, from the timeouts compiled into vitrine and its settings.
function drainBudget(root, env, settings) {
    const define = (file, name) => {
        const m = readText(path.join(root, file)).match(new RegExp(`#define ${name} (\\d+)`));
        if (!m)
            throw new Error(`${file} no longer defines ${name}; update tests/deploy/check.mjs`);
        return Number(m[1]);
    };
    const setting = (envName) => Number(env[envName] ?? settings.get(envName)?.def);
    const parts = {
        'HTTP request in flight (redis.timeout_ms)': setting('VITRINE_REDIS_TIMEOUT_MS'),
        'batch Redis call (INGEST_REDIS_TIMEOUT_MS)': define('service/ingest/ingest.c', 'INGEST_REDIS_TIMEOUT_MS'),
        'leaving the group (ingest.close_timeout_ms)': setting('VITRINE_INGEST_CLOSE_TIMEOUT_MS'),
        'dead-letter flush (DEAD_LETTER_FLUSH_MS)': define('service/ingest/ingest.c', 'DEAD_LETTER_FLUSH_MS'),
        'decisions flush (DECISIONS_FLUSH_MS)': define('service/api/decisions.c', 'DECISIONS_FLUSH_MS'),
        'alerts flush (PRODUCER_FLUSH_MS)': define('service/alerts/leader.c', 'PRODUCER_FLUSH_MS'),
    };
    const total = Object.values(parts).reduce((a, b) => a + b, 0);
    if (!Number.isFinite(total))
        throw new Error(`a drain timeout is not a number: ${JSON.stringify(parts)}`);
    return { total, parts };
}

function describeBudget(budget) {
    return Object.entries(budget.parts).map(([k, v]) => `${k} ${v} ms`).join(' + ');
}

// "60s", "1m30s" -> seconds.
function composeDuration(text) {
    let seconds = 0;
    for (const m of String(text).matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|ns)/g)) {
        const unit = { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6, ns: 1e-9 }[m[2]];
        seconds += Number(m[1]) * unit;
    }
    return seconds;
}

// Every VITRINE_* name in a text; CMake options (-DVITRINE_TESTS=OFF) do not match.
function vitrineNames(text) {
    return new Set([...text.matchAll(/\bVITRINE_[A-Z0-9_]+\b/g)].map((m) => m[0]));
}

// Names used by the project's scripts that vitrine ignores on purpose (see
// check_unknown_env in service/common/config.c).
const SCRIPT_VARIABLES = new Set(['VITRINE_DATA']);

function checkNames(names, settings, where, fail) {
    for (const name of names) {
        if (!settings.has(name) && !SCRIPT_VARIABLES.has(name))
            fail(`${where}: ${name} is not a vitrine setting (vitrine --help lists them)`);
    }
}

// Route templates of the HTTP server ("/v1/sessions/{id}/segment").
function serverRoutes(root) {
    const text = readText(path.join(root, 'service/api/server.c'));
    return [...text.matchAll(/^\s*\{"(\/[^"]*)", "([A-Z]+)"/gm)].map((m) => ({ path: m[1], method: m[2] }));
}

function routeExists(routes, probePath) {
    return routes.some((r) => {
        if (r.method !== 'GET')
            return false;
        const re = new RegExp('^' + r.path.replace(/\{[^}]+\}/g, '[^/]+') + '$');
        return re.test(probePath);
    });
}

// ---- env: the Kubernetes configuration as shell assignments ----

function loadK8s(root) {
    const dir = path.join(root, 'deploy/k8s');
    const objects = [];
    for (const file of fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort()) {
        for (const doc of parseAllDocuments(readText(path.join(dir, file)))) {
            if (doc.errors.length > 0)
                throw new Error(`deploy/k8s/${file}: ${doc.errors[0].message}`);
            const value = doc.toJS();
            if (value)
                objects.push({ file, value });
        }
    }
    return objects;
}

function shellQuote(value) {
    return `'${String(value).replace(/'/g, `'\\''`)}'`;
}

function printEnv(root) {
    const objects = loadK8s(root);
    for (const { value } of objects) {
        if (value.kind === 'ConfigMap')
            for (const [k, v] of Object.entries(value.data || {}))
                console.log(`${k}=${shellQuote(v)}`);
        if (value.kind === 'Secret')
            for (const [k, v] of Object.entries(value.stringData || {}))
                console.log(`${k}=${shellQuote(v)}`);
    }
}

// ---- check ----

async function runChecks(root, work, baseUrl, binDir) {
    const settings = parseHelp(readText(path.join(work, 'vitrine-help.txt')));
    const replayFlags = parseToolFlags(readText(path.join(work, 'replay-help.txt')));
    const catalogFlags = parseToolFlags(readText(path.join(work, 'catalog-help.txt')));
    const metricsPage = readText(path.join(work, 'metrics.txt'));
    const routes = serverRoutes(root);
    const dataDir = process.env.VITRINE_TEST_DATA || path.join(root, '../shared/data/real');

    check('vitrine --help lists the settings', (fail) => {
        for (const name of ['VITRINE_HTTP_PORT', 'VITRINE_KAFKA_TOPIC', 'VITRINE_INGEST_CLOSE_TIMEOUT_MS'])
            if (!settings.has(name))
                fail(`vitrine --help has no ${name}; the help format changed, update parseHelp`);
    });

    // -- Dockerfile --
    const dockerfileText = readText(path.join(root, 'deploy/Dockerfile'));
    const stages = parseDockerfile(dockerfileText);
    const runtime = stages[stages.length - 1];
    const runtimeOf = (name) => runtime.instructions.filter((i) => i.instruction === name);
    const imageEnv = {};
    for (const i of runtimeOf('ENV'))
        for (const m of i.args.matchAll(/(\w+)=(\S+)/g))
            imageEnv[m[1]] = m[2];
    const imageUser = (runtimeOf('USER').pop()?.args || '').split(':')[0];

    check('Dockerfile: multi-stage Debian build, slim non-root runtime', (fail) => {
        if (stages.length < 2)
            fail(`deploy/Dockerfile has ${stages.length} stage(s); build and runtime must be separate`);
        for (const s of stages)
            if (!/^debian:/.test(s.from))
                fail(`deploy/Dockerfile: FROM ${s.from} is not a Debian image`);
        if (!/-slim\b/.test(runtime.from))
            fail(`deploy/Dockerfile: the runtime stage FROM ${runtime.from} is not a slim image`);
        const installs = runtimeOf('RUN').map((i) => i.args).join(' ');
        for (const heavy of ['build-essential', 'cmake', '-dev '])
            if (installs.includes(heavy))
                fail(`deploy/Dockerfile: the runtime stage installs ${heavy.trim()}; keep build tools in the build stage`);
        if (imageUser === '' || imageUser === '0' || imageUser === 'root')
            fail('deploy/Dockerfile: the runtime stage has no non-root USER');
        else if (!/^\d+$/.test(imageUser))
            fail(`deploy/Dockerfile: USER ${imageUser} is not numeric, so Kubernetes' runAsNonRoot cannot verify it`);
        const stop = runtimeOf('STOPSIGNAL').pop();
        if (stop && !/^(SIGTERM|15)$/.test(stop.args))
            fail(`deploy/Dockerfile: STOPSIGNAL ${stop.args}; vitrine drains on SIGTERM`);
        const entry = runtimeOf('ENTRYPOINT').pop();
        if (!entry || !/\/vitrine"\]$/.test(entry.args))
            fail('deploy/Dockerfile: ENTRYPOINT must run the vitrine binary alone (settings come from the environment)');
        if (runtimeOf('CMD').length > 0)
            fail('deploy/Dockerfile: CMD passes arguments; configure vitrine through VITRINE_* variables only');
        const instructions = dockerfileText.split('\n').filter((l) => !/^\s*#/.test(l)).join('\n');
        checkNames(vitrineNames(instructions), settings, 'deploy/Dockerfile', fail);
    });

    const healthcheck = runtimeOf('HEALTHCHECK').pop();
    check('Dockerfile: healthcheck probes a liveness route on the HTTP port', (fail) => {
        if (!healthcheck) {
            fail('deploy/Dockerfile has no HEALTHCHECK');
            return;
        }
        const probe = healthcheck.args.match(/(\/[a-z]+)\s+HTTP|127\.0\.0\.1:?\d*(\/[a-z]+)/);
        const probePath = probe && (probe[1] || probe[2]);
        if (!probePath || !routeExists(routes, probePath))
            fail(`deploy/Dockerfile: HEALTHCHECK path ${probePath} is not a GET route of service/api/server.c`);
        const expose = runtimeOf('EXPOSE').map((i) => i.args.trim());
        const port = imageEnv.VITRINE_HTTP_PORT || settings.get('VITRINE_HTTP_PORT').def;
        if (!expose.includes(port))
            fail(`deploy/Dockerfile: EXPOSE ${expose.join(' ')} does not include the HTTP port ${port}`);
        if (!healthcheck.args.includes('VITRINE_HTTP_PORT') && !healthcheck.args.includes(`:${port}`)
            && !healthcheck.args.includes(`/${port}`))
            fail(`deploy/Dockerfile: HEALTHCHECK does not use the HTTP port ${port}`);
    });

    check('Dockerfile: the healthcheck command passes against a running vitrine', (fail) => {
        if (!healthcheck)
            return;
        const command = healthcheck.args.replace(/^(--\S+\s+)*CMD\s+/, '');
        const cmd = command.startsWith('[') ? JSON.parse(command) : ['/bin/sh', '-c', command];
        const url = new URL(baseUrl);
        const r = spawnSync(cmd[0], cmd.slice(1), {
            env: { PATH: process.env.PATH, VITRINE_HTTP_PORT: url.port }, timeout: 5000,
            encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'],
        });
        if (r.status !== 0)
            fail(`HEALTHCHECK ${cmd.join(' ')} exited with ${r.status} against port ${url.port}: ${r.stderr}`);
    });

    check('Dockerfile: the build stage configures with only what it copies', (fail) => {
        configureLikeDocker(root, stages[0], fail);
    });

    check('Dockerfile: the runtime stage installs the library of every NEEDED entry', (fail) => {
        const installs = runtimeOf('RUN').map((i) => i.args).join(' ');
        const packages = new Set((installs.match(/apt-get install ([^&]*)/) || [null, ''])[1]
            .split(/\s+/).filter((w) => /^[a-z0-9][a-z0-9.+-]+$/.test(w)));
        const multiarch = spawnSync('gcc', ['-print-multiarch'], { encoding: 'utf8' }).stdout.trim();
        for (const program of installedPrograms(root)) {
            const elf = spawnSync('readelf', ['-d', path.join(binDir, program)], { encoding: 'utf8' });
            if (elf.status !== 0) {
                fail(`readelf -d ${path.join(binDir, program)} failed: ${elf.stderr.trim()}`);
                continue;
            }
            for (const m of elf.stdout.matchAll(/\(NEEDED\).*\[(.+)\]/g)) {
                const owner = spawnSync('dpkg', ['-S', `*/${multiarch}/${m[1]}`], { encoding: 'utf8' });
                const pkg = owner.stdout.split('\n').map((l) => l.split(':')[0]).find((p) => p && !p.endsWith('-dev'));
                if (!pkg)
                    fail(`${program} needs ${m[1]}, which no installed Debian package provides`);
                else if (pkg !== 'libc6' && !packages.has(pkg))
                    fail(`deploy/Dockerfile: ${program} needs ${m[1]} from ${pkg}, which the runtime stage does not install`);
            }
        }
    });

    // -- docker-compose.yml --
    const composeText = readText(path.join(root, 'docker-compose.yml'));
    const compose = readYaml(path.join(root, 'docker-compose.yml'));
    const services = compose.services || {};
    const vitrine = services.vitrine || {};
    const vitrineEnv = Object.fromEntries(Object.entries(vitrine.environment || {}).map(([k, v]) => [k, String(v)]));
    const setting = (env, name) => env[name] ?? settings.get(name)?.def;
    const topicSettings = ['VITRINE_KAFKA_TOPIC', 'VITRINE_KAFKA_DEAD_LETTER_TOPIC', 'VITRINE_KAFKA_CATALOG_TOPIC',
        'VITRINE_KAFKA_DECISIONS_TOPIC', 'VITRINE_KAFKA_ALERTS_TOPIC'];

    check('compose: every VITRINE_* name is a setting', (fail) => {
        checkNames(vitrineNames(composeText), settings, 'docker-compose.yml', fail);
    });

    check('compose: Kafka in KRaft mode, Redis, two vitrine replicas in one group', (fail) => {
        const kafka = services.kafka;
        if (!kafka || !/^apache\/kafka:/.test(kafka.image || ''))
            fail('docker-compose.yml: service kafka must use the official apache/kafka image');
        else if (!/controller/.test(kafka.environment?.KAFKA_PROCESS_ROLES || ''))
            fail('docker-compose.yml: kafka has no KAFKA_PROCESS_ROLES with controller (KRaft mode)');
        if (Object.values(services).some((s) => /zookeeper/i.test(s.image || '')))
            fail('docker-compose.yml: a ZooKeeper service is left; KRaft mode needs none');
        if (!services.redis || !/^redis:/.test(services.redis.image || ''))
            fail('docker-compose.yml: no redis service');
        if ((vitrine.deploy?.replicas || 1) < 2)
            fail(`docker-compose.yml: vitrine has ${vitrine.deploy?.replicas || 1} replica(s); two must share the consumer group`);
        const built = Object.values(services).filter((s) => s.build?.dockerfile === 'deploy/Dockerfile');
        if (!built.some((s) => s.image === vitrine.image))
            fail(`docker-compose.yml: vitrine's image ${vitrine.image} is not built from deploy/Dockerfile by any service`);
        const brokers = setting(vitrineEnv, 'VITRINE_KAFKA_BROKERS');
        const host = brokers.split(',')[0].split(':')[0];
        if (!services[host])
            fail(`docker-compose.yml: VITRINE_KAFKA_BROKERS=${brokers} names no service`);
        const redisHost = setting(vitrineEnv, 'VITRINE_REDIS_HOST');
        if (!services[redisHost])
            fail(`docker-compose.yml: VITRINE_REDIS_HOST=${redisHost} names no service`);
        for (const [name, s] of Object.entries(services))
            for (const dep of Object.keys(s.depends_on || {}))
                if (!services[dep])
                    fail(`docker-compose.yml: ${name} depends on ${dep}, which is not a service`);
    });

    check('compose: images are consistent', (fail) => {
        const vitrineImage = vitrine.image;
        for (const name of ['catalog', 'replay'])
            if (services[name]?.image !== vitrineImage)
                fail(`docker-compose.yml: ${name} uses image ${services[name]?.image}, vitrine uses ${vitrineImage}`);
        if (services.topics?.image !== services.kafka?.image)
            fail(`docker-compose.yml: topics uses ${services.topics?.image}, kafka ${services.kafka?.image}; the tools must match the broker`);
    });

    check('compose: the topics job creates every topic vitrine uses', (fail) => {
        const job = services.topics;
        if (!job) {
            fail('docker-compose.yml: no topics service');
            return;
        }
        const script = [].concat(job.command || []).join('\n');
        const jobEnv = job.environment || {};
        const replicas = vitrine.deploy?.replicas || 1;
        for (const name of topicSettings) {
            const topic = setting(vitrineEnv, name);
            if (topic === '')
                continue;
            if (jobEnv[name] !== undefined && String(jobEnv[name]) !== topic)
                fail(`docker-compose.yml: topics has ${name}=${jobEnv[name]} but vitrine uses ${topic}`);
            const literal = new RegExp(`(^|[^\\w.-])${topic.replace(/\./g, '\\.')}(:(\\d+))?($|[^\\w.-])`);
            const line = script.split('\n').find((l) => l.includes(`$$${name}`) || l.includes(`\${${name}}`)
                || literal.test(l));
            if (!line) {
                fail(`docker-compose.yml: the topics job does not create ${topic} (${name})`);
                continue;
            }
            const partitions = Number((line.match(/--partitions (\d+)/) || [])[1]
                || (line.match(literal) || [])[3] || 0);
            if (name === 'VITRINE_KAFKA_TOPIC' && partitions < replicas)
                fail(`docker-compose.yml: ${topic} has ${partitions} partitions for ${replicas} replicas; each replica needs one`);
            if (partitions < 1)
                fail(`docker-compose.yml: ${topic} is created without --partitions`);
            if (name === 'VITRINE_KAFKA_CATALOG_TOPIC' && !/cleanup\.policy=compact/.test(line))
                fail(`docker-compose.yml: the catalog topic ${topic} must be compacted (cleanup.policy=compact)`);
        }
    });

    check('compose: catalog and replay jobs use real flags, topics and files', (fail) => {
        const replay = [].concat(services.replay?.entrypoint || [], services.replay?.command || []).join(' ');
        const catalog = [].concat(services.catalog?.command || []).join(' ');
        for (const [what, text, flags, tool] of [['replay', replay, replayFlags, 'vitrine-replay'],
            ['catalog', catalog, catalogFlags, 'vitrine-catalog']]) {
            if (!text.includes(tool)) {
                fail(`docker-compose.yml: ${what} does not run ${tool}`);
                continue;
            }
            for (const flag of text.slice(text.indexOf(tool)).match(/(?<=\s)--?[a-z][a-z0-9-]*/g) || [])
                if (!flags.has(flag))
                    fail(`docker-compose.yml: ${what} passes ${flag}, which ${tool} --help does not list`);
        }
        const topic = (replay.match(/--topic (\S+)/) || [])[1] || 'events';
        if (topic !== setting(vitrineEnv, 'VITRINE_KAFKA_TOPIC'))
            fail(`docker-compose.yml: replay writes to ${topic}, vitrine reads ${setting(vitrineEnv, 'VITRINE_KAFKA_TOPIC')}`);
        const brokers = (replay.match(/--brokers (\S+)/) || [])[1];
        if (brokers !== setting(vitrineEnv, 'VITRINE_KAFKA_BROKERS'))
            fail(`docker-compose.yml: replay uses brokers ${brokers}, vitrine ${setting(vitrineEnv, 'VITRINE_KAFKA_BROKERS')}`);
        for (const file of `${replay} ${catalog}`.match(/\/data\/[^\s)"']+/g) || []) {
            const local = path.join(dataDir, file.slice('/data/'.length));
            if (file.includes('*') ? fs.readdirSync(path.dirname(local)).length === 0 : !fs.existsSync(local))
                fail(`docker-compose.yml: ${file} does not exist in the real data (${local})`);
        }
    });

    const budget = drainBudget(root, vitrineEnv, settings);
    check('compose: ports, healthcheck and stop grace period match vitrine', (fail) => {
        const port = setting(vitrineEnv, 'VITRINE_HTTP_PORT');
        for (const p of vitrine.ports || [])
            if (String(p).split(':').pop() !== port)
                fail(`docker-compose.yml: vitrine publishes ${p}, but vitrine listens on ${port}`);
        if (setting(vitrineEnv, 'VITRINE_HTTP_BIND') === '127.0.0.1')
            fail('docker-compose.yml: vitrine binds 127.0.0.1 and cannot be reached from other containers');
        const grace = composeDuration(vitrine.stop_grace_period || '10s');
        if (grace * 1000 <= budget.total)
            fail(`docker-compose.yml: stop_grace_period ${grace} s is not longer than vitrine's stop (${budget.total} ms: ${describeBudget(budget)})`);
        if (services.replay?.depends_on?.vitrine?.condition === 'service_healthy' && !healthcheck)
            fail('docker-compose.yml: replay waits for vitrine to be healthy, but the image has no HEALTHCHECK');
    });

    check('compose: the archive profile registers an S3 sink without credentials in files', (fail) => {
        const connect = services.connect;
        const register = services['connect-register'];
        if (!connect || !(connect.profiles || []).includes('archive'))
            fail('docker-compose.yml: no connect service in profile archive');
        if (!register || !(register.profiles || []).includes('archive'))
            fail('docker-compose.yml: no connect-register service in profile archive');
        if (!connect || !register)
            return;
        for (const [k, v] of Object.entries(connect.environment || {}))
            if (/SECRET|PASSWORD|ACCESS_KEY/.test(k) && !/^\$\{[A-Z0-9_]+(:-)?\}$/.test(String(v)))
                fail(`docker-compose.yml: connect sets ${k} to a literal value; take it from the environment (\${${k}:-})`);
        const mount = (register.volumes || []).map(String).find((v) => v.endsWith('.json:ro') || /\.json:/.test(v));
        if (!mount) {
            fail('docker-compose.yml: connect-register mounts no connector JSON');
            return;
        }
        const [host, inContainer] = mount.split(':');
        const file = path.join(root, host);
        if (!fs.existsSync(file)) {
            fail(`docker-compose.yml: connector config ${host} does not exist`);
            return;
        }
        const args = [].concat(register.command || []).join(' ');
        if (!args.includes(`@${inContainer}`))
            fail(`docker-compose.yml: connect-register does not send ${inContainer}`);
        const port = String(connect.environment?.CONNECT_REST_PORT || 8083);
        if (!new RegExp(`PUT .*http://connect:${port}/connectors/[\\w.-]+/config`).test(args))
            fail(`docker-compose.yml: connect-register must PUT /connectors/NAME/config on connect:${port}`);
        const config = JSON.parse(readText(file));
        const topics = String(config.topics || '').split(',').map((t) => t.trim());
        for (const name of ['VITRINE_KAFKA_DECISIONS_TOPIC', 'VITRINE_KAFKA_TOPIC'])
            if (!topics.includes(setting(vitrineEnv, name)))
                fail(`${host}: topics ${config.topics} lacks ${setting(vitrineEnv, name)} (${name})`);
        if (!/S3SinkConnector$/.test(config['connector.class'] || ''))
            fail(`${host}: connector.class ${config['connector.class']} is not an S3 sink`);
        for (const [k, v] of Object.entries(config))
            if (/secret|password|access[._]key|credentials/i.test(k) && !/^\$\{env:[A-Z0-9_]+\}$/.test(String(v)))
                fail(`${host}: ${k} contains a literal value; credentials come from the worker's environment`);
        for (const m of JSON.stringify(config).matchAll(/\$\{env:([A-Z0-9_]+)\}/g))
            if (!(m[1] in (connect.environment || {})))
                fail(`${host}: \${env:${m[1]}} is not set in the connect service's environment`);
    });

    // -- Kubernetes --
    const k8s = loadK8s(root);
    const byKind = (kind) => k8s.filter((o) => o.value.kind === kind).map((o) => o.value);
    const [deployment] = byKind('Deployment');
    const [configMap] = byKind('ConfigMap');
    const [secret] = byKind('Secret');
    const k8sEnv = { ...(configMap?.data || {}), ...(secret?.stringData || {}) };

    check('k8s: every object kind is there and kustomization lists every file', (fail) => {
        for (const kind of ['Deployment', 'Service', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'ConfigMap', 'Secret'])
            if (byKind(kind).length !== 1)
                fail(`deploy/k8s: expected one ${kind}, found ${byKind(kind).length}`);
        const kustomization = k8s.find((o) => o.value.kind === 'Kustomization');
        if (!kustomization)
            return;
        const listed = new Set(kustomization.value.resources || []);
        for (const file of new Set(k8s.map((o) => o.file)))
            if (file !== kustomization.file && !listed.has(file))
                fail(`deploy/k8s/kustomization.yaml does not list ${file}`);
        for (const file of listed)
            if (!fs.existsSync(path.join(root, 'deploy/k8s', file)))
                fail(`deploy/k8s/kustomization.yaml lists ${file}, which does not exist`);
        const images = kustomization.value.images || [];
        const containerImages = (deployment?.spec?.template?.spec?.containers || []).map((c) => c.image.split(':')[0]);
        for (const img of images)
            if (!containerImages.includes(img.name))
                fail(`deploy/k8s/kustomization.yaml: image ${img.name} is used by no container`);
    });

    check('k8s: ConfigMap and Secret hold real settings, secrets only in the Secret', (fail) => {
        for (const [k] of Object.entries(configMap?.data || {})) {
            if (!settings.has(k))
                fail(`deploy/k8s ConfigMap: ${k} is not a vitrine setting`);
            else if (settings.get(k).secret)
                fail(`deploy/k8s ConfigMap: ${k} is a secret setting; move it to the Secret`);
        }
        if (secret?.data)
            fail('deploy/k8s Secret: use stringData with placeholders, not base64 data');
        for (const [k, v] of Object.entries(secret?.stringData || {})) {
            if (!settings.has(k))
                fail(`deploy/k8s Secret: ${k} is not a vitrine setting`);
            if (v !== '' && !/^REPLACE_/.test(String(v)))
                fail(`deploy/k8s Secret: ${k} contains a value that is not a placeholder (REPLACE_... or empty)`);
        }
        for (const name of ['VITRINE_HTTP_TOKEN_STOREFRONT', 'VITRINE_HTTP_TOKEN_ANALYST', 'VITRINE_KAFKA_SASL_PASSWORD', 'VITRINE_REDIS_PASSWORD'])
            if (!(name in (secret?.stringData || {})))
                fail(`deploy/k8s Secret: ${name} is missing`);
        for (const name of topicSettings)
            if (setting(k8sEnv, name) !== setting(vitrineEnv, name))
                fail(`deploy/k8s ConfigMap: ${name}=${setting(k8sEnv, name)}, docker-compose.yml uses ${setting(vitrineEnv, name)}`);
    });

    check('k8s: Deployment probes, ports, resources and grace period', (fail) => {
        const spec = deployment?.spec?.template?.spec;
        const container = spec?.containers?.[0];
        if (!container) {
            fail('deploy/k8s Deployment: no container');
            return;
        }
        const port = setting(k8sEnv, 'VITRINE_HTTP_PORT');
        const named = Object.fromEntries((container.ports || []).map((p) => [p.name, String(p.containerPort)]));
        const resolve = (p) => named[p] ?? String(p);
        if (!Object.values(named).includes(port))
            fail(`deploy/k8s Deployment: containerPort ${Object.values(named).join(',')} differs from VITRINE_HTTP_PORT ${port}`);
        for (const [probe, expected] of [['livenessProbe', '/healthz'], ['readinessProbe', '/readyz']]) {
            const get = container[probe]?.httpGet;
            if (!get) {
                fail(`deploy/k8s Deployment: no ${probe} with httpGet`);
                continue;
            }
            if (get.path !== expected)
                fail(`deploy/k8s Deployment: ${probe} path ${get.path}; expected ${expected}`);
            if (!routeExists(routes, get.path))
                fail(`deploy/k8s Deployment: ${probe} path ${get.path} is not a GET route of service/api/server.c`);
            if (resolve(get.port) !== port)
                fail(`deploy/k8s Deployment: ${probe} port ${get.port} is ${resolve(get.port)}, vitrine listens on ${port}`);
        }
        for (const kind of ['requests', 'limits'])
            for (const r of ['cpu', 'memory'])
                if (!container.resources?.[kind]?.[r])
                    fail(`deploy/k8s Deployment: resources.${kind}.${r} is not set`);
        const preStop = container.lifecycle?.preStop?.exec?.command || [];
        const sleep = preStop[0]?.endsWith('sleep') ? Number(preStop[1]) : 0;
        const grace = spec.terminationGracePeriodSeconds ?? 30;
        const needed = budget.total + sleep * 1000;
        if (grace * 1000 <= needed)
            fail(`deploy/k8s Deployment: terminationGracePeriodSeconds ${grace} is not longer than the preStop sleep ${sleep} s + vitrine's stop (${describeBudget(budget)}) = ${needed} ms`);
        if (String(spec.securityContext?.runAsUser) !== imageUser)
            fail(`deploy/k8s Deployment: runAsUser ${spec.securityContext?.runAsUser} differs from the image's USER ${imageUser}`);
        if (spec.securityContext?.runAsNonRoot !== true)
            fail('deploy/k8s Deployment: runAsNonRoot is not true');
        const refs = (container.envFrom || []).map((e) => e.configMapRef?.name || e.secretRef?.name);
        if (!refs.includes(configMap?.metadata?.name) || !refs.includes(secret?.metadata?.name))
            fail(`deploy/k8s Deployment: envFrom ${refs.join(',')} does not name both the ConfigMap and the Secret`);
        for (const e of container.env || [])
            if (/^VITRINE_/.test(e.name) && !settings.has(e.name))
                fail(`deploy/k8s Deployment: env ${e.name} is not a vitrine setting`);
        const ann = deployment.spec.template.metadata?.annotations || {};
        if (ann['prometheus.io/port'] && ann['prometheus.io/port'] !== port)
            fail(`deploy/k8s Deployment: prometheus.io/port ${ann['prometheus.io/port']} differs from ${port}`);
        if (ann['prometheus.io/path'] && !routeExists(routes, ann['prometheus.io/path']))
            fail(`deploy/k8s Deployment: prometheus.io/path ${ann['prometheus.io/path']} is not a route`);
    });

    check('k8s: Service, HPA and PDB point at the Deployment', (fail) => {
        const [service] = byKind('Service');
        const [hpa] = byKind('HorizontalPodAutoscaler');
        const [pdb] = byKind('PodDisruptionBudget');
        const podLabels = deployment?.spec?.template?.metadata?.labels || {};
        const matches = (selector) => selector && Object.entries(selector).every(([k, v]) => podLabels[k] === v);
        if (!matches(deployment?.spec?.selector?.matchLabels))
            fail('deploy/k8s Deployment: selector does not match its pod labels');
        if (!matches(service?.spec?.selector))
            fail('deploy/k8s Service: selector does not match the pods');
        const container = deployment?.spec?.template?.spec?.containers?.[0] || {};
        const portNames = new Set((container.ports || []).flatMap((p) => [p.name, p.containerPort]));
        for (const p of service?.spec?.ports || [])
            if (!portNames.has(p.targetPort))
                fail(`deploy/k8s Service: targetPort ${p.targetPort} is no container port`);
        const target = hpa?.spec?.scaleTargetRef;
        if (target?.kind !== 'Deployment' || target?.name !== deployment?.metadata?.name)
            fail(`deploy/k8s HPA: scaleTargetRef ${target?.kind}/${target?.name} is not the Deployment`);
        if (!(hpa?.spec?.minReplicas >= 2 && hpa.spec.minReplicas <= hpa.spec.maxReplicas))
            fail(`deploy/k8s HPA: minReplicas ${hpa?.spec?.minReplicas} must be at least 2 and at most maxReplicas`);
        if (!(container.resources?.requests?.cpu) && (hpa?.spec?.metrics || []).some((m) => m.resource?.name === 'cpu'))
            fail('deploy/k8s HPA: scales on CPU, but the container requests no CPU');
        if (!matches(pdb?.spec?.selector?.matchLabels))
            fail('deploy/k8s PDB: selector does not match the pods');
        if (!(pdb?.spec?.minAvailable < (hpa?.spec?.minReplicas ?? deployment?.spec?.replicas)))
            fail(`deploy/k8s PDB: minAvailable ${pdb?.spec?.minAvailable} must be below the minimum replicas, or no node can be drained`);
    });

    // -- probes and routes against the running binary --
    const probePaths = new Set(['/healthz', '/readyz', '/metrics']);
    for (const c of deployment?.spec?.template?.spec?.containers || [])
        for (const p of ['livenessProbe', 'readinessProbe', 'startupProbe'])
            if (c[p]?.httpGet?.path)
                probePaths.add(c[p].httpGet.path);
    for (const probePath of probePaths) {
        const response = await fetch(new URL(probePath, baseUrl)).catch((e) => ({ status: `error ${e.message}` }));
        check(`vitrine answers 200 on ${probePath}`, (fail) => {
            if (response.status !== 200)
                fail(`GET ${probePath} returned ${response.status} from the running vitrine`);
        });
    }

    // -- monitoring --
    const scrape = parseScrape(metricsPage);
    const rules = readYaml(path.join(root, 'deploy/monitoring/prometheus-rules.yaml'));
    const dashboard = JSON.parse(readText(path.join(root, 'deploy/monitoring/grafana-dashboard.json')));

    check('monitoring: rules are alerting rules with severity and summary', (fail) => {
        for (const group of rules.groups || [])
            for (const rule of group.rules || []) {
                if (!rule.alert || !rule.expr)
                    fail(`prometheus-rules.yaml: group ${group.name} has a rule without alert and expr`);
                if (!['critical', 'warning', 'info'].includes(rule.labels?.severity))
                    fail(`prometheus-rules.yaml: ${rule.alert} has no severity label`);
                if (!rule.annotations?.summary)
                    fail(`prometheus-rules.yaml: ${rule.alert} has no summary`);
            }
        const names = (rules.groups || []).flatMap((g) => g.rules.map((r) => r.alert));
        for (const [topic, pattern] of [['down', /up\{/], ['lag', /consumer_lag/], ['HTTP error rate', /code=~"5/],
            ['Redis errors', /redis_errors/], ['dead letters', /dead_letter/], ['latency p99', /histogram_quantile\(0\.99/]])
            if (!(rules.groups || []).some((g) => g.rules.some((r) => pattern.test(r.expr))))
                fail(`prometheus-rules.yaml: no rule covers ${topic} (${names.join(', ')})`);
    });

    const scraped = (fail) => {
        if (scrape.size > 0)
            return true;
        fail('no /metrics page was scraped (see the failures above), so no metric name was checked');
        return false;
    };

    check('monitoring: rule metrics and labels exist in a real /metrics scrape', (fail) => {
        if (!scraped(fail))
            return;
        for (const group of rules.groups || [])
            for (const rule of group.rules || [])
                checkExpression(rule.expr, scrape, `prometheus-rules.yaml ${rule.alert}`, fail);
    });

    check('monitoring: dashboard panels query metrics and labels that exist', (fail) => {
        const panels = (dashboard.panels || []).filter((p) => p.type !== 'row');
        if (panels.length === 0)
            fail('grafana-dashboard.json has no panels');
        const checkMetrics = scraped(fail);
        for (const p of panels) {
            if (!p.targets?.length)
                fail(`grafana-dashboard.json: panel "${p.title}" has no query`);
            for (const t of checkMetrics ? p.targets || [] : [])
                checkExpression(t.expr, scrape, `grafana-dashboard.json panel "${p.title}"`, fail);
        }
        const all = panels.flatMap((p) => (p.targets || []).map((t) => t.expr)).join('\n');
        for (const [topic, pattern] of [['request rate', /rate\(vitrine_http_requests_total/],
            ['latency quantiles per route', /histogram_quantile\([^,]+, sum by \(route, le\)/],
            ['ingest rate', /rate\(vitrine_events_total/], ['lag per partition', /by \(partition\) \(vitrine_consumer_lag\{/],
            ['errors', /vitrine_redis_errors_total/], ['alerts', /vitrine_alerts_active/]])
            if (!pattern.test(all))
                fail(`grafana-dashboard.json: no panel shows ${topic}`);
    });

    return report();
}

// The families of a Prometheus text page: name -> {type, labels:Set}.
function parseScrape(text) {
    const families = new Map();
    const family = (name) => {
        if (!families.has(name))
            families.set(name, { type: 'untyped', labels: new Set(), samples: 0 });
        return families.get(name);
    };
    for (const line of text.split('\n')) {
        const type = line.match(/^# TYPE (\S+) (\S+)/);
        if (type) {
            family(type[1]).type = type[2];
            continue;
        }
        const sample = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s/);
        if (!sample)
            continue;
        const f = family(sample[1]);
        f.samples++;
        for (const m of (sample[3] || '').matchAll(/(\w+)="/g))
            f.labels.add(m[1]);
    }
    return families;
}

// Labels Prometheus adds to every scraped series, and functions' own labels.
const TARGET_LABELS = new Set(['job', 'instance']);
const PROMQL_WORDS = new Set(['sum', 'max', 'min', 'avg', 'count', 'rate', 'irate', 'increase', 'deriv',
    'histogram_quantile', 'absent', 'by', 'without', 'and', 'or', 'unless', 'on', 'ignoring',
    'group_left', 'group_right', 'offset', 'bool', 'label_values', 'topk', 'bottomk', 'delta', 'changes']);

// Check that each metric of a PromQL expression exists in the scrape, and that each label it
// selects or groups by is one of that metric's labels.
function checkExpression(expr, scrape, where, fail) {
    const metrics = [];
    for (const m of expr.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{([^}]*)\})?/g)) {
        const name = m[1];
        if (PROMQL_WORDS.has(name) || !/^(vitrine_|up$)/.test(name))
            continue;
        const before = expr.slice(0, m.index);
        if (/\$__?\w*$|\$$/.test(before))
            continue; // a Grafana variable such as $__rate_interval
        metrics.push({ name, selector: m[3] || '' });
    }
    if (metrics.length === 0) {
        fail(`${where}: no vitrine metric in ${expr}`);
        return;
    }
    const labelsOf = new Set(TARGET_LABELS);
    for (const { name, selector } of metrics) {
        if (name === 'up')
            continue; // Prometheus' own series for each target
        let base = name;
        let extra = [];
        const histogram = name.match(/^(.*)_(bucket|sum|count)$/);
        if (!scrape.has(name) && histogram && scrape.get(histogram[1])?.type === 'histogram') {
            base = histogram[1];
            extra = histogram[2] === 'bucket' ? ['le'] : [];
        }
        const family = scrape.get(base);
        if (!family || (family.samples === 0 && family.type !== 'histogram')) {
            fail(`${where}: ${name} is not on vitrine's /metrics page`);
            continue;
        }
        const labels = new Set([...family.labels, ...extra, ...TARGET_LABELS]);
        if (family.type === 'histogram')
            for (const l of scrape.get(`${base}_bucket`)?.labels || [])
                labels.add(l);
        for (const l of labels)
            labelsOf.add(l);
        for (const m of selector.matchAll(/(\w+)\s*(=~|!~|!=|=)/g))
            if (!labels.has(m[1]))
                fail(`${where}: ${name} has no label ${m[1]} (it has ${[...labels].join(', ')})`);
    }
    for (const m of expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g))
        for (const l of m[1].split(',').map((s) => s.trim()).filter(Boolean))
            if (!labelsOf.has(l))
                fail(`${where}: groups by ${l}, which none of its metrics has`);
}

// Programs CMakeLists.txt installs (install(TARGETS ... RUNTIME)).
function installedPrograms(root) {
    const m = readText(path.join(root, 'CMakeLists.txt')).match(/install\(TARGETS([^)]*?)RUNTIME/);
    return (m ? m[1] : '').split(/\s+/).filter(Boolean);
}

// Copy what the Dockerfile's build stage copies (minus .dockerignore) into a temporary
// folder and configure it with the stage's cmake options, as `docker build` would. Then
// check that the stage builds every target that CMakeLists.txt installs.
function configureLikeDocker(root, stage, fail) {
    const ignoreFile = path.join(root, '.dockerignore');
    const ignore = (fs.existsSync(ignoreFile) ? readText(ignoreFile) : '').split('\n')
        .map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    const ignored = (rel) => ignore.some((pattern) => {
        const re = new RegExp('^' + pattern.replace(/\./g, '\\.').replace(/\*\*\//g, '(.*/)?')
            .replace(/\*/g, '[^/]*') + '(/|$)');
        return re.test(rel);
    });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vitrine-docker-context.'));
    try {
        const copyTree = (rel) => {
            const from = path.join(root, rel);
            if (ignored(rel))
                return;
            if (fs.statSync(from).isDirectory()) {
                for (const entry of fs.readdirSync(from))
                    copyTree(path.join(rel, entry));
            } else {
                fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
                fs.copyFileSync(from, path.join(dir, rel));
            }
        };
        let runArgs = '';
        for (const i of stage.instructions) {
            if (i.instruction === 'COPY' && !i.args.startsWith('--from')) {
                const parts = i.args.split(/\s+/);
                const dest = parts.pop();
                for (const src of parts) {
                    if (!fs.existsSync(path.join(root, src))) {
                        fail(`deploy/Dockerfile: COPY ${src}: no such file in the build context`);
                        continue;
                    }
                    if (dest !== src && dest !== `${src}/` && !(dest === './' && !src.includes('/')))
                        fail(`deploy/Dockerfile: COPY ${src} ${dest} changes the layout; this check expects the checkout's paths`);
                    copyTree(src);
                }
            }
            if (i.instruction === 'RUN' && i.args.includes('cmake -S'))
                runArgs = i.args;
        }
        const options = runArgs.match(/-D\w+=\w+/g) || [];
        const r = spawnSync('cmake', ['-S', dir, '-B', path.join(dir, 'build'), ...options],
            { encoding: 'utf8', timeout: 120000 });
        if (r.status !== 0) {
            const errors = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => /Error|Cannot find/.test(l));
            fail(`deploy/Dockerfile: cmake ${options.join(' ')} fails on the copied sources: ${errors.slice(0, 3).join(' | ')}`);
            return;
        }
        const installed = installedPrograms(root);
        const built = (runArgs.match(/--target ((?:[\w-]+ ?)+)/) || [null, ''])[1].split(/\s+/).filter(Boolean);
        if (built.length > 0)
            for (const target of installed)
                if (!built.includes(target))
                    fail(`deploy/Dockerfile: cmake --install needs ${target}, which the build stage does not build (--target)`);
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

// ---- main ----

const [mode, root, work, baseUrl, binDir] = process.argv.slice(2);
if (mode === 'env' && root) {
    printEnv(root);
} else if (mode === 'check' && root && work && baseUrl && binDir) {
    process.exitCode = await runChecks(root, work, baseUrl, binDir);
} else {
    console.error('usage: node check.mjs env ROOT | node check.mjs check ROOT WORK BASE_URL BIN_DIR');
    process.exitCode = 2;
}
