import net, { type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { startMonitor } from './fixtures/monitor.js';
import { closeAfterTest, HOST, listen, until } from './fixtures/net.js';

/** One line of code that leaks: a client that never ends after the server closed. */
function leakyConnect(port: number): Socket {
  return closeAfterTest(net.connect({ port, host: HOST, allowHalfOpen: true })).resume();
}

describe('report()', () => {
  it('groups many leaks from one line of code into one line, with count and oldest age', async () => {
    const monitor = startMonitor();
    const server = net.createServer((socket) => socket.end());
    const port = await listen(server);
    const count = 200;
    for (let i = 0; i < count; i++) leakyConnect(port);
    await until(() => monitor.leaks().length === count, 5000, `${count} leaks`);

    const report = monitor.report();
    expect(report.leaked).toBe(count);
    expect(report.byKind['half-closed']).toBe(count);
    expect(report.byDirection.client).toBe(count);
    expect(report.groups).toHaveLength(1);
    const [group] = report.groups;
    expect(group).toMatchObject({ count, kind: 'half-closed', direction: 'client' });
    expect(group!.where).toContain('report-grouping.test.ts');
    expect(group!.oldestAgeMs).toBeGreaterThanOrEqual(200);
    expect(group!.stack).toContain('leakyConnect');
    expect(group!.leakIds.length).toBeLessThanOrEqual(20);

    const table = String(report);
    // The kernel's lines (the check runs by default on Linux) follow the groups: not counted.
    const lines = table.split('\n').filter((line) => !/^\s*(kernel|unattributed)\b/.test(line));
    expect(lines[0]).toContain(`${count} leaked sockets`);
    expect(lines).toHaveLength(3); // summary, header, one group
    expect(lines[2]).toMatch(new RegExp(`^\\s*${count}\\s+\\d`));
    expect(JSON.parse(JSON.stringify(report)).groups[0].count).toBe(count);
  });

  it('groups accepted sockets by server, apart from other servers', async () => {
    const monitor = startMonitor();
    const ports: number[] = [];
    for (let s = 0; s < 2; s++) {
      const server = net.createServer({ allowHalfOpen: true }, () => {});
      ports.push(await listen(server));
    }
    for (const port of ports) {
      for (let i = 0; i < 3; i++) closeAfterTest(net.connect({ port, host: HOST })).end();
    }
    await until(() => monitor.leaks().length === 6, 3000, '6 leaks');
    const groups = monitor.report().groups;
    expect(groups.map((g) => g.count)).toEqual([3, 3]);
    expect(groups.map((g) => g.server?.port).sort()).toEqual([...ports].sort());
    expect(groups[0]!.where).toMatch(
      /^server 127\.0\.0\.1:\d+ \(listen at test\/fixtures\/net\.ts/,
    );
  });

  it('counts states of every tracked socket', async () => {
    const monitor = startMonitor();
    const server = net.createServer({ allowHalfOpen: true }, () => {});
    const port = await listen(server);
    const client = closeAfterTest(net.connect({ port, host: HOST }));
    await until(() => monitor.sockets().length === 2, 2000, 'two sockets');
    expect(monitor.report().byState).toMatchObject({ open: 2, leaked: 0 });
    client.end();
    await until(() => monitor.report().byState.leaked === 1, 2000, 'one leak');
  });
});
