/**
 * One benchmark server process: `node bench/http-server.js <variant>`. Prints its port, serves
 * a tiny response (the worst case for relative overhead: the app itself does almost nothing),
 * and on SIGTERM prints its CPU time per request after the load's warm-up, then exits.
 */
import http from 'node:http';
import { installVariant } from './variants.js';

const variant = process.argv[2];
const warmupMs = Number(process.argv[3] ?? 0);
const keep = installVariant(variant);
let connections = 0;
let requests = 0;
/** CPU and requests when the load's warm-up ends; the rest of the run is what we measure. */
let mark;

const server = http.createServer((_request, response) => {
  if (requests++ === 0) {
    setTimeout(() => {
      mark = { cpu: process.cpuUsage(), requests };
    }, warmupMs);
  }
  response.setHeader('content-type', 'text/plain');
  response.end('hello');
});
server.keepAliveTimeout = 30_000;
server.on('connection', () => connections++);
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
process.on('SIGTERM', () => {
  const cpu = process.cpuUsage(mark?.cpu);
  const measured = requests - (mark?.requests ?? 0);
  const cpuMicrosPerRequest = (cpu.user + cpu.system) / measured;
  const monitored = keep !== undefined;
  process.stdout.write(
    `${JSON.stringify({ connections, requests, cpuMicrosPerRequest, monitored })}\n`,
  );
  process.exit(0);
});
