import { once } from 'node:events';
import net from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { startMonitor } from './fixtures/monitor.js';
import { HOST } from './fixtures/net.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function heapAfterGc(): number {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
}

/** Opens and closes `count` connections, `parallel` at a time, both ends in this process. */
async function churn(port: number, count: number, parallel: number): Promise<void> {
  let started = 0;
  async function worker() {
    while (started < count) {
      started++;
      const socket = net.connect({ port, host: HOST });
      socket.resume();
      await once(socket, 'connect');
      socket.end();
      await once(socket, 'close');
    }
  }
  await Promise.all(Array.from({ length: parallel }, worker));
}

describe('churn', () => {
  it('20,000 open/close cycles leave the tracked set empty and the heap flat', async () => {
    const monitor = startMonitor();
    // Not the listen() fixture: it keeps every accepted socket until the test ends.
    const server = net.createServer((socket) => socket.resume());
    server.listen(0, HOST);
    await once(server, 'listening');
    const port = (server.address() as net.AddressInfo).port;
    await churn(port, 1000, 20); // warm up JIT and pools before the baseline
    const baseline = heapAfterGc();
    const cycles = 20_000;
    let leaks = 0;
    monitor.on('leak', () => leaks++);
    await churn(port, cycles, 50);
    // The server side closes right after the client: wait for the last 'close' events.
    const deadline = Date.now() + 5000;
    while (monitor.sockets().length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(monitor.sockets()).toEqual([]);
    const growth = heapAfterGc() - baseline;
    console.log(
      `churn: ${cycles} cycles (${cycles * 2} sockets tracked), heap growth ${(growth / 1024).toFixed(0)} KiB`,
    );
    expect(growth).toBeLessThan(5 * 1024 * 1024);
    expect(leaks).toBe(0);
    server.close();
  }, 120_000);
});
