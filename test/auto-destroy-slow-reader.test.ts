import { once } from 'node:events';
import net, { type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { SocketLeak } from '../src/index.js';
import { startMonitor } from './fixtures/monitor.js';
import { HOST, listen } from './fixtures/net.js';

const PAYLOAD = 8 * 1024 * 1024;
/** About 2 MB/s: the transfer takes ~4 s, far past graceMs. */
const BYTES_PER_MS = 2000;

// Linux only: the policy reads the socket's send queue from /proc/net/tcp.
describe.skipIf(process.platform !== 'linux')('auto-destroy and a slow reader', () => {
  it('never destroys a peer that half-closed and reads slowly while the app end()s behind a big write', async () => {
    const monitor = startMonitor({ graceMs: 300, autoDestroy: { afterMs: 0 } });
    const destroyed: SocketLeak[] = [];
    monitor.on('destroy', (leak) => destroyed.push(leak));
    const withdrawn: string[] = [];
    monitor.on('leak-resolved', (leak, resolution) => {
      if (resolution.reason === 'progress') withdrawn.push(leak.kind);
    });
    const served: Socket[] = [];
    const server = net.createServer({ allowHalfOpen: true }, (socket) => {
      served.push(socket);
      socket.resume();
      // The peer's FIN: answer with one big write and end() queued behind it.
      socket.once('end', () => socket.end(Buffer.alloc(PAYLOAD, 1)));
    });
    const port = await listen(server);

    const client = net.connect({ port, host: HOST });
    await once(client, 'connect');
    client.end(); // half-close: the server now has the peer's FIN
    let received = 0;
    // A slow reader: after each chunk, a pause as long as the chunk takes at BYTES_PER_MS.
    client.on('data', (chunk: Buffer) => {
      received += chunk.length;
      client.pause();
      setTimeout(() => client.resume(), chunk.length / BYTES_PER_MS);
    });
    const ended = new Promise<string>((resolve) => {
      client.on('end', () => resolve('end'));
      client.on('close', () => resolve('close'));
      client.on('error', (error) => resolve(`error ${error.message}`));
    });
    const outcome = await ended;
    expect(outcome).toBe('end');
    expect(received).toBe(PAYLOAD);
    expect(destroyed).toEqual([]);
    // In-process progress could not tell (it was judged end-stuck), and the kernel's send
    // queue withdrew it before the policy acted: the case this test is about did happen.
    expect(withdrawn).toContain('end-stuck');
    client.destroy();
  }, 30_000);
});
