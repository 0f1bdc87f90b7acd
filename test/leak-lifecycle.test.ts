import { once } from 'node:events';
import net, { type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { LeakResolution, SocketLeak } from '../src/index.js';
import { GRACE_MS, nextLeak, startMonitor } from './fixtures/monitor.js';
import { announcesEveryConnect, connect, listen, until, waitFor } from './fixtures/net.js';

/** A server that never ends its side: every client that ends leaves a half-closed socket. */
async function halfOpenServer() {
  const accepted: Socket[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (socket) => accepted.push(socket));
  const port = await listen(server);
  return { port, accepted };
}

async function halfClosedLeak(port: number, accepted: Socket[]) {
  const client = await connect(port);
  await until(() => accepted.some((s) => s.remotePort === client.localPort), 1000, 'accept');
  const socket = accepted.find((s) => s.remotePort === client.localPort)!;
  client.on('data', () => {}); // the peer reads what the server writes later
  client.end();
  return { client, socket };
}

describe('a declared leak', () => {
  it("that moves again is withdrawn ('progress'), and declared afresh once it is quiet again", async () => {
    const monitor = startMonitor();
    const { port, accepted } = await halfOpenServer();
    const { socket } = await halfClosedLeak(port, accepted);
    const mine = (leak: SocketLeak) => leak.remotePort === socket.remotePort;
    const first = await nextLeak(monitor, mine);
    expect(first.kind).toBe('half-closed');

    const resolved = waitFor<[SocketLeak, LeakResolution]>(
      monitor,
      'leak-resolved',
      GRACE_MS * 4,
      (leak) => leak.id === first.id,
    );
    socket.write('still here'); // the app writes to the half-closed peer: progress
    const [, resolution] = await resolved;
    expect(resolution.reason).toBe('progress');
    expect(monitor.leaks().some(mine)).toBe(false);

    // Quiet again: judged afresh, a new leak of the same socket after another grace.
    const [second] = await waitFor<[SocketLeak]>(monitor, 'leak', GRACE_MS * 6, mine);
    expect(second.id).toBe(first.id);
    expect(second.detectedAt).toBeGreaterThan(first.detectedAt);
  });

  it('is never destroyed by the policy once the monitor stopped, even from a leak listener', async () => {
    const monitor = startMonitor({ autoDestroy: { afterMs: 0 } });
    const destroyed: SocketLeak[] = [];
    monitor.on('destroy', (leak) => destroyed.push(leak));
    monitor.on('leak', () => monitor.stop());
    const { port, accepted } = await halfOpenServer();
    const { socket } = await halfClosedLeak(port, accepted);
    await waitFor(monitor, 'leak', GRACE_MS * 4);
    expect(monitor.running).toBe(false);
    // afterMs 0: a policy still acting would have destroyed it on its next timer, long before.
    const closed = once(socket, 'close');
    const waited = await Promise.race([
      closed.then(() => 'closed'),
      new Promise((resolve) => setTimeout(resolve, GRACE_MS * 2, 'open')),
    ]);
    expect(waited).toBe('open');
    expect(socket.destroyed).toBe(false);
    expect(destroyed).toEqual([]);
  });
});

describe('a client socket that connects again', () => {
  /** Connects one socket `times` times to a server that ends at once (so each life closes). */
  async function reconnects(socket: Socket, port: number, times: number) {
    for (let i = 0; i < times; i++) {
      socket.connect(port, '127.0.0.1');
      await once(socket, 'connect');
      await once(socket, 'close'); // the server ends, the client (not allowHalfOpen) too
    }
  }

  it('with patchSocketConnect, gets one pair of listeners however often it reconnects', async () => {
    const monitor = startMonitor({ patchSocketConnect: true });
    const port = await listen(net.createServer((socket) => socket.end()));
    const socket = new net.Socket();
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      await reconnects(socket, port, 2);
      // Listeners after two lives: Node's, ours, and any other monitor's (closewait/vitest's).
      const ends = socket.listenerCount('end');
      const closes = socket.listenerCount('close');
      await reconnects(socket, port, 15);
      expect(socket.listenerCount('end')).toBe(ends);
      expect(socket.listenerCount('close')).toBe(closes);
      // One more life, left open: stop() takes our pair off the socket it tracks.
      socket.connect(port, '127.0.0.1');
      await once(socket, 'connect');
      monitor.stop();
      expect(socket.listenerCount('end')).toBe(ends - 1);
      expect(socket.listenerCount('close')).toBe(closes - 1);
      socket.destroy();
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
  });

  it.skipIf(!announcesEveryConnect)(
    'is tracked again on each connect() where Node announces every connect (no patch needed)',
    async () => {
      const monitor = startMonitor();
      const port = await listen(net.createServer((socket) => socket.end()));
      // The second server half-closes and keeps its side open; the client never ends: a leak.
      const leakPort = await listen(
        net.createServer({ allowHalfOpen: true }, (socket) => socket.end()),
      );
      const socket = new net.Socket({ allowHalfOpen: true });
      socket.connect(port, '127.0.0.1');
      await once(socket, 'connect');
      socket.destroy();
      await once(socket, 'close');
      socket.connect(leakPort, '127.0.0.1');
      await once(socket, 'connect');
      const leak = await nextLeak(monitor, (l) => l.localPort === socket.localPort);
      expect(leak.kind).toBe('half-closed');
      expect(leak.direction).toBe('client');
      socket.destroy();
    },
  );
});
