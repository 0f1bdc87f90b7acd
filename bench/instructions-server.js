/**
 * The server half of `bench/instructions.js`: `node bench/instructions-server.js <variant> <n>`.
 * Serves `n` connection-per-request responses (the worst case for closewait: one tracked
 * socket per request), then exits on its own so that valgrind writes its counts.
 */
import http from 'node:http';
import { installVariant } from './variants.js';

const variant = process.argv[2];
const wanted = Number(process.argv[3]);
const keep = installVariant(variant);
let served = 0;
const server = http.createServer((_request, response) => {
  response.setHeader('connection', 'close');
  response.end('hello');
  if (++served === wanted) {
    response.on('finish', () => {
      server.close();
      // Nothing of ours may keep the process alive; exit explicitly all the same, so a slow
      // close never lengthens the run. `keep` stays reachable until here.
      setImmediate(() => process.exit(keep === null ? 1 : 0));
    });
  }
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
