// Starting and stopping vitrine instances for the contract check, producing events with
// vitrine-replay, and a small HTTP client that sends exactly the request it is given
// (any method, any header, a Content-Length without a body).

import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A TCP port on 127.0.0.1 that was free a moment ago.
export function freePort() {
    return new Promise((resolve, reject) => {
        const server = net.createServer();
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => {
            const { port } = server.address();
            server.close(() => resolve(port));
        });
    });
}

// One HTTP request on a new connection. Returns {status, headers, body} with lower-case
// header names; rejects after timeoutMs.
export function request(port, { method = 'GET', path, headers = {}, body, timeoutMs = 10000 }) {
    return new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false },
                                 (res) => {
            const chunks = [];
            res.on('data', (chunk) => chunks.push(chunk));
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers,
                                          body: Buffer.concat(chunks).toString('utf8') }));
            res.on('error', reject);
        });
        req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${path} timed out ` +
                                                              `after ${timeoutMs} ms`)));
        // A 413 sent before the body ends the connection; the response still counts.
        req.on('error', reject);
        if (body !== undefined)
            req.write(body);
        req.end();
    });
}

// Send text as it is on a new connection and read until the server closes it, for requests
// that node:http will not send (a header given twice). Returns {status, headers, body} of
// the first response, and in answers the number of responses on the connection. Rejects
// after timeoutMs.
export function rawRequest(port, text, timeoutMs = 10000) {
    return new Promise((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1', () => socket.end(text));
        const chunks = [];
        socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no response within ${timeoutMs} ms`)));
        socket.on('data', (chunk) => chunks.push(chunk));
        socket.on('error', reject);
        socket.on('close', () => {
            const raw = Buffer.concat(chunks).toString('utf8');
            const split = raw.indexOf('\r\n\r\n');
            if (split < 0)
                return reject(new Error(`no complete response: ${JSON.stringify(raw.slice(0, 200))}`));
            const [statusLine, ...lines] = raw.slice(0, split).split('\r\n');
            const headers = {};
            for (const line of lines) {
                const colon = line.indexOf(':');
                headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
            }
            const length = Number(headers['content-length'] ?? raw.length - split - 4);
            resolve({ status: Number(statusLine.split(' ')[1]), headers,
                      body: raw.slice(split + 4, split + 4 + length),
                      answers: raw.split(/^HTTP\/1\.[01] /m).length - 1 });
        });
    });
}

export class Instance {
    // name: used in topics, group, Redis prefix and the log file; env: settings beyond the
    // common ones; opts: {workDir, binary, pidFile}.
    constructor(name, env, opts) {
        this.name = name;
        this.env = env;
        this.opts = opts;
        this.logPath = `${opts.workDir}/${name}.log`;
        this.child = null;
        this.port = 0;
    }

    async start() {
        this.port = await freePort();
        // Only PATH and the sanitizers' settings come from this process: vitrine stops at
        // an unknown VITRINE_* variable, and the check sets all of its own.
        const inherited = Object.entries(process.env).filter(([name]) =>
            name === 'PATH' || /^(ASAN|UBSAN|LSAN|TSAN)_OPTIONS$/.test(name));
        const env = {
            ...Object.fromEntries(inherited),
            VITRINE_HTTP_PORT: String(this.port),
            VITRINE_HTTP_THREADS: '2',
            VITRINE_LOG_LEVEL: 'info',
            ...this.env,
        };
        const log = openSync(this.logPath, 'a');
        this.child = spawn(this.opts.binary, [], { env, stdio: ['ignore', log, log] });
        closeSync(log);
        appendFileSync(this.opts.pidFile, `${this.child.pid}\n`);
        this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) =>
            resolve({ code, signal })));
    }

    // Wait until path returns 200, for at most seconds; throws with the log's end when the
    // process exits or the time runs out.
    async waitFor(path, seconds) {
        const end = Date.now() + seconds * 1000;
        let last = 'no answer';
        while (Date.now() < end) {
            if (this.child.exitCode !== null || this.child.signalCode !== null)
                throw new Error(`vitrine ${this.name} exited during start-up:\n${this.logTail()}`);
            try {
                const res = await request(this.port, { path, timeoutMs: 2000 });
                if (res.status === 200)
                    return;
                last = `${res.status} ${res.body}`;
            } catch (err) {
                last = err.message;
            }
            await sleep(100);
        }
        throw new Error(`vitrine ${this.name}: ${path} did not answer 200 within ${seconds} s ` +
                        `(last: ${last}):\n${this.logTail()}`);
    }

    logTail(lines = 30) {
        try {
            return readFileSync(this.logPath, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
        } catch {
            return '(no log)';
        }
    }

    // SIGTERM and wait for the exit, SIGKILL after timeoutMs. Returns the exit status.
    async stop(timeoutMs = 20000) {
        if (this.child === null || this.child.exitCode !== null || this.child.signalCode !== null)
            return this.exited ? await this.exited : null;
        this.child.kill('SIGTERM');
        const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
        const status = await this.exited;
        clearTimeout(timer);
        return status;
    }
}

// Produce the records (objects) to topic with vitrine-replay, keyed by session id; throws
// when the tool fails.
export function produce(replayBinary, brokers, topic, records, workDir, name) {
    const file = `${workDir}/${name}.jsonl`;
    writeFileSync(file, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const result = spawnSync(replayBinary, ['--jsonl', file, '--brokers', brokers, '--topic', topic,
                                            '--speed', 'max', '--log-level', 'warn'],
                             { encoding: 'utf8', timeout: 60000 });
    if (result.status !== 0)
        throw new Error(`vitrine-replay failed (status ${result.status}, ${result.error ?? ''}):\n` +
                        `${result.stderr}`);
}
