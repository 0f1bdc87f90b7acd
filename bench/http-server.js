/**
 * One benchmark server process: `node bench/http-server.js <variant> <warmupMs> [profileFile]`.
 * Prints its port, serves a tiny response (the worst case for relative overhead: the app
 * itself does almost nothing), and on SIGTERM prints its CPU time per request after the
 * load's warm-up, then exits. With `profileFile`, V8's sampling profiler runs over the same
 * window (warm-up excluded) and its profile is written there.
 */
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { Session } from 'node:inspector';
import { installVariant } from './variants.js';

const variant = process.argv[2];
const warmupMs = Number(process.argv[3] ?? 0);
const profileFile = process.argv[4];
const keep = installVariant(variant);
let connections = 0;
let requests = 0;
/** CPU and requests when the load's warm-up ends; the rest of the run is what we measure. */
let mark;
const session = profileFile === undefined ? undefined : new Session();

function startMeasuring() {
  if (session !== undefined) {
    session.connect();
    session.post('Profiler.enable');
    session.post('Profiler.setSamplingInterval', { interval: 100 });
    session.post('Profiler.start');
  }
  mark = { cpu: process.cpuUsage(), requests };
}

function stopProfiler() {
  if (session === undefined || mark === undefined) return Promise.resolve();
  return new Promise((resolve, reject) =>
    session.post('Profiler.stop', (error, result) => {
      if (error) return reject(error);
      writeFileSync(profileFile, JSON.stringify(result.profile));
      resolve();
    }),
  );
}

const server = http.createServer((_request, response) => {
  if (requests++ === 0) setTimeout(startMeasuring, warmupMs);
  response.setHeader('content-type', 'text/plain');
  response.end('hello');
});
server.keepAliveTimeout = 30_000;
server.on('connection', () => connections++);
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
process.on('SIGTERM', async () => {
  const cpu = process.cpuUsage(mark?.cpu);
  const measured = requests - (mark?.requests ?? 0);
  const cpuMicrosPerRequest = (cpu.user + cpu.system) / measured;
  await stopProfiler();
  const monitored = keep !== undefined;
  const line = { connections, requests, cpuMicrosPerRequest, monitored };
  process.stdout.write(`${JSON.stringify(line)}\n`);
  process.exit(0);
});
