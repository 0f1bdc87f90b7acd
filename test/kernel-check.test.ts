import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createSocketMonitor } from '../src/index.js';
import { kernelEndpoints } from '../src/kernel/kernel-address.js';
import { snapshotKernel } from '../src/kernel/kernel-check.js';
import {
  ANY_STATE,
  type KernelSocketRow,
  parseLines,
  parseProcNetTcp,
} from '../src/kernel/proc-net-tcp.js';
import { processCloseWaitRows } from '../src/kernel/process-sockets.js';
import { expectNoLeak, GRACE_MS, nextLeak, startMonitor } from './fixtures/monitor.js';
import { closeAfterTest, HOST, listen, pausedReaderLeak, waitFor } from './fixtures/net.js';
import { procNetTcpTable } from './fixtures/proc-net-tcp-table.js';

const linux = process.platform === 'linux';
const hasIpv6Loopback = Object.values(os.networkInterfaces()).some((addresses) =>
  addresses?.some((a) => a.family === 'IPv6' && a.address === '::1'),
);

describe.runIf(linux)('kernel check (Linux: reads /proc/net/tcp)', () => {
  for (const host of hasIpv6Loopback ? [HOST, '::1'] : [HOST]) {
    it(`finds the paused-reader leak Node cannot see, with its site (${host})`, async () => {
      const monitor = startMonitor();
      const { port, serverSocket } = await pausedReaderLeak(host);
      // Node never sees this FIN: nothing is reported by the in-process rules.
      await expectNoLeak(monitor, GRACE_MS * 2);
      expect(serverSocket.readableEnded).toBe(false);

      const first = await monitor.kernelCheck();
      expect(first.supported).toBe(true);
      const hidden = first.hidden.find((h) => h.socket.localPort === port);
      expect(hidden).toBeDefined();
      expect(hidden!.unreadBytes).toBeGreaterThan(0);
      expect(hidden!.socket.stack).toContain('kernel-check.test.ts');

      // A second check, graceMs on, with no reading progress: now it is a leak.
      await new Promise((resolve) => setTimeout(resolve, GRACE_MS));
      const leakEvent = nextLeak(monitor, (leak) => leak.kind === 'unread-fin');
      const second = await monitor.kernelCheck();
      const leak = await leakEvent;
      expect(leak).toMatchObject({ kind: 'unread-fin', direction: 'server', localPort: port });
      expect(leak.kernelUnreadBytes).toBeGreaterThan(0);
      expect(leak.server?.listenSite).toContain('test/fixtures/net.ts');
      expect(leak.stack).toContain('kernel-check.test.ts');
      expect(second.hidden.find((h) => h.socket.localPort === port)?.leak).toBe(leak);

      // Reading at last: Node reaches the FIN, and the leak resolves.
      const resolved = waitFor(monitor, 'leak-resolved');
      serverSocket.resume();
      await resolved;
    });
  }

  it('confirms in-process leaks and lists unannounced CLOSE_WAIT sockets as unattributed', async () => {
    // A connection made before the monitor starts is never announced to it.
    const server = net.createServer((socket) => socket.end());
    const port = await listen(server);
    const unseen = closeAfterTest(net.connect({ port, host: HOST, allowHalfOpen: true }));
    unseen.resume();
    await waitFor(unseen, 'end');

    const monitor = startMonitor();
    const halfOpen = net.createServer({ allowHalfOpen: true }, () => {});
    const halfOpenPort = await listen(halfOpen);
    const client = closeAfterTest(net.connect({ port: halfOpenPort, host: HOST }));
    await waitFor(client, 'connect');
    client.end();
    const leak = await nextLeak(monitor);

    const result = await monitor.kernelCheck();
    expect(result.confirmed.map((l) => l.id)).toContain(leak.id);
    expect(result.unattributed).toContainEqual(
      expect.objectContaining({
        localPort: unseen.localPort,
        remotePort: port,
        state: 'CLOSE_WAIT',
      }),
    );
    expect(result.closeWait).toBeGreaterThanOrEqual(2);
    const report = monitor.report();
    expect(report.kernel?.unattributed.map((row) => row.localPort)).toContain(unseen.localPort);
    expect(String(report)).toContain('unattributed');
  });

  it('runs periodically with kernelCheckIntervalMs', async () => {
    const monitor = startMonitor({ kernelCheckIntervalMs: 100 });
    const { port } = await pausedReaderLeak();
    const leak = await nextLeak(monitor, (l) => l.kind === 'unread-fin', 5000);
    expect(leak.localPort).toBe(port);
  });

  it('agrees with the kernel for this process only', async () => {
    const { port } = await pausedReaderLeak();
    // The FIN reaches the kernel right after the client's end(): poll /proc until it shows.
    let rows = await processCloseWaitRows('self');
    const deadline = Date.now() + 2000;
    while (!rows.some((row) => row.localPort === port) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      rows = await processCloseWaitRows('self');
    }
    expect(rows.find((row) => row.localPort === port)).toMatchObject({ state: 'CLOSE_WAIT' });
  });

  it("finds its own unattributed socket among thousands of other processes' CLOSE_WAIT rows", async () => {
    const { port } = await pausedReaderLeak();
    let ours: KernelSocketRow | undefined;
    const deadline = Date.now() + 2000;
    while (ours === undefined && Date.now() < deadline) {
      ours = (await processCloseWaitRows('self')).find((row) => row.localPort === port);
      if (ours === undefined) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(ours).toBeDefined();
    // A table of 3,000 CLOSE_WAIT rows whose inodes no process here holds, but for one: ours,
    // first (a row kept whole) or last (past the rows kept whole, so read again).
    const { text, closeWaitSockets } = procNetTcpTable({ rows: 3000, closeWait: 3000 });
    for (const position of [0, closeWaitSockets.length - 1]) {
      const dir = mkdtempSync(join(tmpdir(), 'closewait-tcp-'));
      const path = join(dir, 'tcp');
      const inode = closeWaitSockets[position]!.inode;
      writeFileSync(path, text.replace(` ${inode} `, ` ${ours!.inode} `), {
        flag: 'wx',
        mode: 0o600,
      });
      try {
        const snapshot = await snapshotKernel([], [{ path, missingIsEmpty: false }]);
        expect(snapshot.matched).toEqual([]);
        expect(snapshot.unattributed).toEqual([
          expect.objectContaining({ inode: ours!.inode, state: 'CLOSE_WAIT' }),
        ]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });
});

describe.skipIf(linux)('kernel check elsewhere', () => {
  it('says it is unsupported instead of failing', async () => {
    const monitor = createSocketMonitor().start();
    const result = await monitor.kernelCheck();
    monitor.stop();
    expect(result).toMatchObject({ supported: false, hidden: [], unattributed: [] });
    expect(result.reason).toContain('Linux');
  });
});

describe('parsing /proc/net/tcp', () => {
  const header =
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
  it('parses IPv4 and IPv6 rows in the kernel byte order', () => {
    const text =
      header +
      '   0: 0100007F:1F90 0100007F:C350 08 00000000:0000E400 00:00000000 00000000  1000        0 4242 1 0 20 4 30 10 -1\n' +
      '   1: 00000000000000000000000001000000:1F90 00000000000000000000000001000000:C351 08 00000010:00000020 00:00000000 00000000     0        0 4243 1 0 20 4 30 10 -1\n' +
      '   2: 0000000000000000FFFF00000100007F:0050 0000000000000000FFFF00000100007F:D000 01 00000000:00000000 00:00000000 00000000     0        0 4244 1\n';
    const rows = parseProcNetTcp(text);
    expect(rows).toEqual([
      expect.objectContaining({
        localAddress: '127.0.0.1',
        localPort: 8080,
        remoteAddress: '127.0.0.1',
        remotePort: 50000,
        state: 'CLOSE_WAIT',
        receiveQueue: 0xe400,
        unreadBytes: 0xe400 - 1, // the unread FIN counts as one byte in CLOSE_WAIT
        uid: 1000,
        inode: 4242,
      }),
      expect.objectContaining({
        localAddress: '::1',
        remoteAddress: '::1',
        sendQueue: 16,
        receiveQueue: 32,
      }),
      expect.objectContaining({
        localAddress: '::ffff:127.0.0.1',
        localPort: 80,
        state: 'ESTABLISHED',
      }),
    ]);
    expect(parseProcNetTcp(text, '08')).toHaveLength(2);
  });

  it('skips malformed lines instead of failing', () => {
    const text =
      header +
      'garbage\n' +
      '   0: ZZZZ:1F90 0100007F:C350 08 00000000:00000000 00:00000000 00000000 0 0 1 1\n' +
      '   1: 0100007F:1F90 0100007F:C350 08 nothex 00:00000000 00000000 0 0 1 1\n' +
      '   2: 0100007F:1F90 0100007F:C350 08 00000000:00000000 00:00000000 00000000 0 0 77 1\n' +
      '\n';
    expect(parseProcNetTcp(text).map((row) => row.inode)).toEqual([77]);
  });

  it('rejects what the kernel never prints: big ports, negative or non-hex queues, bad numbers', () => {
    const row = (fields: string) => `   0: ${fields}\n`;
    const good =
      '0100007F:1F90 0100007F:C350 08 00000000:00000001 00:00000000 00000000 1000 0 77 1';
    const text =
      header +
      row(good) +
      row('0100007F:10000 0100007F:C350 08 00000000:00000001 00:00000000 00000000 1000 0 1 1') +
      row('0100007F:1F90 0100007F:FFFFF 08 00000000:00000001 00:00000000 00000000 1000 0 2 1') +
      row('0100007F:1F90 0100007F:C350 08 -0000001:00000001 00:00000000 00000000 1000 0 3 1') +
      row('0100007F:1F90 0100007F:C350 08 00000000:-1 00:00000000 00000000 1000 0 4 1') +
      row('0100007F:1F90 0100007F:C350 08 00000000:0000000G 00:00000000 00000000 1000 0 5 1') +
      row('0100007F:1F90 0100007F:C350 08 000000000:00000001 00:00000000 00000000 1000 0 6 1') +
      row('0100007F:1F90 0100007F:C350 08 00000000:00000001 00:00000000 00000000 -1 0 7 1') +
      row('0100007F:1F90 0100007F:C350 08 00000000:00000001 00:00000000 00000000 1000 0 0x8 1') +
      row('0100007F:1F90 0100007F:C350 08 00000000:00000001 00:00000000 00000000 1000 0 9e3 1') +
      row('0100007F:1F90 0100007F:C350 08 00000000:00000001 00:00000000 00000000 1000 0') +
      row('100007F:1F90 0100007F:C350 08 00000000:00000001 00:00000000 00000000 1000 0 10 1') +
      row('0100007F1F90 0100007F:C350 08 00000000:00000001 00:00000000 00000000 1000 0 11 1') +
      row('0100007F:1F90 0100007F:C350 8 00000000:00000001 00:00000000 00000000 1000 0 12 1') +
      row('0100007F:1F90 0100007F:C350 XY 00000000:00000001 00:00000000 00000000 1000 0 13 1') +
      '\u0000\u00ff\n' +
      row(good.replace(' 77 ', ' 78 '));
    expect(parseProcNetTcp(text).map((row) => row.inode)).toEqual([77, 78]);
    expect(parseProcNetTcp(text, '08').map((row) => row.inode)).toEqual([77, 78]);
    expect(parseProcNetTcp(text, '06')).toEqual([]);
    // A last line without its newline still counts.
    expect(parseProcNetTcp(header + row(good).trimEnd())).toHaveLength(1);
  });

  it("writes Node's addresses as the kernel prints them, the form rows are matched on", () => {
    expect(kernelEndpoints('127.0.0.1', 8080, '127.0.0.1', 50000)).toBe(
      '0100007F:1F90 0100007F:C350',
    );
    expect(kernelEndpoints('::1', 8080, '::1', 50001)).toBe(
      '00000000000000000000000001000000:1F90 00000000000000000000000001000000:C351',
    );
    expect(kernelEndpoints('::ffff:127.0.0.1', 80, '::ffff:10.1.2.3', 53248)).toBe(
      '0000000000000000FFFF00000100007F:0050 0000000000000000FFFF00000302010A:D000',
    );
    // A link-local address's zone is Node's, not the kernel's.
    expect(kernelEndpoints('fe80::1%eth0', 80, 'fe80::2', 1)).toBe(
      '000080FE000000000000000001000000:0050 000080FE000000000000000002000000:0001',
    );
    for (const [local, remote] of [
      ['256.0.0.1', '127.0.0.1'],
      ['1:2:3:4:5:6:7:8:9', '::1'],
      ['1::2::3', '::1'],
      ['::1', '127.0.0.1'],
    ]) {
      expect(kernelEndpoints(local!, 1, remote!, 2)).toBeUndefined();
    }
    expect(kernelEndpoints('127.0.0.1', 65536, '127.0.0.1', 1)).toBeUndefined();
  });

  it.runIf(linux)('agrees with every row of this machine’s tables', async () => {
    const { readFileSync } = await import('node:fs');
    let compared = 0;
    for (const path of ['/proc/self/net/tcp', '/proc/self/net/tcp6']) {
      let bytes: Buffer;
      try {
        bytes = readFileSync(path);
      } catch {
        continue; // no IPv6 here
      }
      parseLines(bytes, bytes.length, ANY_STATE, (line) => {
        const row = line.row()!;
        expect(row).toBeDefined();
        const { localAddress, localPort, remoteAddress, remotePort } = row;
        expect(kernelEndpoints(localAddress, localPort, remoteAddress, remotePort)).toBe(
          line.endpoints(),
        );
        compared++;
      });
    }
    expect(compared).toBeGreaterThan(0);
  });
});
