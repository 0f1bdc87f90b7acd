// npm run demo: real leaky servers, real clients on 127.0.0.1, then closewait's report next to
// what the kernel says. Every socket here is real; nothing is simulated.
import net from 'node:net';
import { createSocketMonitor } from 'closewait';
import { startBodyServer } from './leaks/body-server.js';
import { startHalfOpenTcpServer } from './leaks/half-open-tcp-server.js';
import { startPausedReaderServer } from './leaks/paused-reader-server.js';
import { measureUnreadBodyBytes } from './leaks/unread-body-size.js';
import { startUpgradeServer } from './leaks/upgrade-server.js';

const GRACE_MS = 500;
const HOST = '127.0.0.1';

// Logs off: the report below says it all. In a service you would pass your pino logger.
const monitor = createSocketMonitor({ graceMs: GRACE_MS, stacks: 'all', logger: false }).start();

function waitUntil(condition, timeoutMs, what) {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + timeoutMs;
    const timer = setInterval(() => {
      if (condition()) {
        clearInterval(timer);
        resolve();
      } else if (Date.now() > deadline) {
        clearInterval(timer);
        reject(new Error(`demo: ${what} did not happen within ${timeoutMs} ms`));
      }
    }, 20);
  });
}

function connect(port) {
  const socket = net.connect({ port, host: HOST });
  socket.on('error', () => {});
  return new Promise((resolve) => socket.once('connect', () => resolve(socket)));
}

/** A client that says hello and leaves (sends its FIN), like a browser tab closing. */
async function halfCloseClient(port, payload) {
  const socket = await connect(port);
  socket.resume();
  socket.end(payload);
  return socket;
}

const tcp = await startHalfOpenTcpServer();
const upgrade = await startUpgradeServer();
const bodies = await startBodyServer();
const paused = await startPausedReaderServer();
const portOf = (server) => server.address().port;

console.log('closewait demo: four leaky servers on 127.0.0.1, real clients, graceMs =', GRACE_MS);
console.log(`  half-open TCP echo server   :${portOf(tcp)}   3 clients send a line and leave`);
console.log(`  HTTP server, 'upgrade' route :${portOf(upgrade)}   2 clients upgrade, then leave`);
console.log(
  `  HTTP body server            :${portOf(bodies)}   1 fetch() whose body is never read`,
);
console.log(`  paused-reader TCP server    :${portOf(paused)}   1 client sends 120 KB and leaves`);

for (let i = 0; i < 3; i++) await halfCloseClient(portOf(tcp), `hello ${i}\n`);
for (let i = 0; i < 2; i++) {
  const socket = await connect(portOf(upgrade));
  socket.write(
    `GET /live?client=${i} HTTP/1.1\r\nHost: demo\r\nUpgrade: demo\r\nConnection: Upgrade\r\n\r\n`,
  );
  await new Promise((resolve) => socket.once('data', resolve));
  socket.end();
}
// The most common leak of all: a response whose body nobody reads.
const unread = await fetch(
  `http://${HOST}:${portOf(bodies)}/bytes/${await measureUnreadBodyBytes('fetch')}`,
);
await halfCloseClient(portOf(paused), Buffer.alloc(120 * 1024));

console.log(`\nwaiting for the leaks to outlive graceMs (${GRACE_MS} ms)...`);
await waitUntil(() => monitor.leaks().length >= 6, 10_000, 'six leaks');

// The paused reader's FIN is inside the kernel: only /proc/net/tcp shows it. Two kernel
// checks graceMs apart, with no reading in between, make it an `unread-fin` leak.
const supported = (await monitor.kernelCheck()).supported;
let kernel;
if (supported) {
  await new Promise((resolve) => setTimeout(resolve, GRACE_MS));
  kernel = await monitor.kernelCheck();
}

console.log(`\n${String(monitor.report())}\n`);

const worst = monitor.report().groups[0];
if (worst?.stack) {
  console.log(`creation stack of the oldest leak in the first group (${worst.where}):`);
  console.log(worst.stack.split('\n').slice(0, 4).join('\n'), '\n');
}

if (!supported) {
  console.log('the kernel view needs Linux (/proc/net/tcp): skipped on', process.platform);
} else {
  const leaksById = new Map(monitor.leaks().map((leak) => [leak.id, leak]));
  console.log(`what the kernel says: ${kernel.rows.length} sockets of this process in CLOSE_WAIT`);
  console.log('  LOCAL                  REMOTE                 UNREAD  CLOSEWAIT SAYS');
  for (const row of kernel.rows) {
    const leak = row.socketId === undefined ? undefined : leaksById.get(row.socketId);
    const verdict = leak ? `leak #${leak.id} ${leak.kind} (${leak.direction})` : 'not reported';
    console.log(
      `  ${`${row.localAddress}:${row.localPort}`.padEnd(22)} ${`${row.remoteAddress}:${row.remotePort}`.padEnd(22)} ${String(row.unreadBytes).padStart(6)}  ${verdict}`,
    );
  }
  const hidden = kernel.hidden.filter((entry) => entry.leak !== undefined);
  console.log(
    `\n${hidden.length} leak${hidden.length === 1 ? '' : 's'} found only through the kernel ` +
      "(the FIN waits behind bytes Node never read, so Node never emitted 'end').",
  );
}

// Keep the unread response referenced until here, so it is not collected before we report.
void unread;
monitor.stop();
process.exit(0);
