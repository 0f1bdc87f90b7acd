import { once } from 'node:events';
import net, { type Socket } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import type { KernelSocket, SocketLeak } from '../src/index.js';
import { ROOT } from './fixtures/apps/spawn-app.js';
import { GRACE_MS, nextLeak, startMonitor } from './fixtures/monitor.js';
import { connect, listen, until } from './fixtures/net.js';

const WORKER = join(ROOT, 'test/fixtures/apps/worker-monitor.mjs');
const DIST_INDEX = pathToFileURL(join(ROOT, 'dist/esm/index.js')).href;

interface Leaked {
  type: 'leaked';
  threadId: number;
  port: number;
  leak: SocketLeak;
}
interface Checked {
  type: 'checked';
  leaks: SocketLeak[];
  unattributed: KernelSocket[];
  closeWait: number;
}

const workers = new Set<Worker>();
afterEach(async () => {
  for (const worker of workers) await worker.terminate();
  workers.clear();
});

function nextMessage<T extends { type: string }>(worker: Worker, type: T['type']): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${type}' from the worker`)), 5000);
    const onMessage = (message: T) => {
      if (message.type !== type) return;
      clearTimeout(timer);
      worker.off('message', onMessage);
      resolve(message);
    };
    worker.on('message', onMessage);
  });
}

describe.skipIf(process.platform !== 'linux')('monitors in several threads (Linux: /proc)', () => {
  it("each thread reports its own leak once; neither lists the other's as unattributed", async () => {
    const monitor = startMonitor();
    const accepted: Socket[] = [];
    const server = net.createServer({ allowHalfOpen: true }, (socket) => accepted.push(socket));
    const port = await listen(server);
    const client = await connect(port);
    client.end();
    const mainLeak = await nextLeak(monitor, (leak) => leak.localPort === port);

    const worker = new Worker(WORKER, { workerData: { distIndex: DIST_INDEX, graceMs: GRACE_MS } });
    workers.add(worker);
    worker.on('error', (error) => {
      throw error;
    });
    const { leak: workerLeak, threadId } = await nextMessage<Leaked>(worker, 'leaked');
    expect(threadId).toBeGreaterThan(0);

    // The main thread's view: its own leak, and the worker's socket is nobody's unattributed.
    const inMain = await monitor.kernelCheck();
    // Both are this process's CLOSE_WAIT sockets; only one is this thread's.
    expect(inMain.closeWait).toBe(2);
    expect(inMain.unattributed).toEqual([]);
    expect(monitor.leaks().map((leak) => leak.localPort)).toEqual([mainLeak.localPort]);

    // The worker's view, the same way round.
    worker.postMessage('check');
    const inWorker = await nextMessage<Checked>(worker, 'checked');
    expect(inWorker.unattributed).toEqual([]);
    expect(inWorker.closeWait).toBe(2);
    expect(inWorker.leaks.map((leak) => leak.localPort)).toEqual([workerLeak.localPort]);
    expect(workerLeak.localPort).not.toBe(mainLeak.localPort);

    worker.postMessage('stop');
    await once(worker, 'exit');
    workers.delete(worker);
    expect(accepted).toHaveLength(1);
    await until(() => monitor.leaks().length === 1, 1000, 'the main leak still open');
  });
});
