/**
 * The load for the churn soak, in its own process so the monitored test process only serves:
 * `node churn-client.js '<json>'` with `{ port, unreadPort, total, parallel, leakEvery }`.
 * Each connection sends one byte and its FIN:
 * - 'h' to `port`: healthy, the server ends its side and the socket closes;
 * - 'l' to `port` (every leakEvery-th, odd ones): the server never ends it (half-closed leak);
 * - 'u' to `unreadPort` (every leakEvery-th, even ones): the server never reads it
 *   (unconsumed-fin leak).
 * Leaking connections are left open (the server destroys them once reported) and not waited
 * for. Prints `{ progress }` lines every 50,000 connections and `{ done, leaks }` at the end.
 */
import net from 'node:net';

const { port, unreadPort, total, parallel, leakEvery } = JSON.parse(process.argv[2]);
const HEALTHY = Buffer.from('h');
const HALF_CLOSED = Buffer.from('l');
const UNREAD = Buffer.from('u');
let started = 0;
let finished = 0;
let leaks = 0;
let errors = 0;

function report(line) {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function onError() {
  errors++;
}

function next() {
  if (started === total) {
    if (finished === total) report({ done: true, leaks, errors });
    return;
  }
  const index = ++started;
  const leaking = leakEvery > 0 && index % leakEvery === 0;
  const unread = leaking && (index / leakEvery) % 2 === 0;
  const socket = net.connect({ port: unread ? unreadPort : port, host: '127.0.0.1' });
  let counted = false;
  // Exactly once per connection: a leaking one counts when its FIN is sent, a healthy one when
  // it closes, and either when it closes first (a refused connection).
  const once = () => {
    if (counted) return;
    counted = true;
    done();
  };
  socket.on('error', onError);
  socket.resume();
  socket.once('connect', () => {
    socket.end(leaking ? (unread ? UNREAD : HALF_CLOSED) : HEALTHY);
    if (leaking) {
      leaks++;
      once();
    }
  });
  socket.once('close', once);
}

function done() {
  finished++;
  if (finished % 50_000 === 0) report({ progress: finished });
  next();
}

for (let i = 0; i < parallel; i++) next();
process.on('SIGTERM', () => process.exit(0));
