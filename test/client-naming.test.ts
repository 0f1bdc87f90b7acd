import dc from 'node:diagnostics_channel';
import http from 'node:http';
import got from 'got';
import { describe, expect, it } from 'vitest';
import type { SocketMonitor } from '../src/index.js';
import { startMonitor } from './fixtures/monitor.js';
import { HOST, listen, until } from './fixtures/net.js';

/** The line after the call, as the stack reports it (Vitest maps it back to this source). */
function nextLine(): number {
  const caller = new Error().stack?.split('\n')[2] ?? '';
  return Number(/:(\d+):\d+\)?$/.exec(caller)?.[1]) + 1;
}

const here = 'test/client-naming.test.ts';

/** Node 22.12+ announces each ClientRequest as it is made; Node 20 does not. */
function announcesRequestCreated(): boolean {
  let seen = false;
  const onCreated = () => {
    seen = true;
  };
  dc.subscribe('http.client.request.created', onCreated);
  const request = http.request({ host: HOST, port: 1, agent: false });
  request.on('error', () => {});
  request.destroy();
  dc.unsubscribe('http.client.request.created', onCreated);
  return seen;
}

/** Holds every response until `answer()`: the socket stays open while the test looks at it. */
async function server() {
  const held: http.ServerResponse[] = [];
  const port = await listen(http.createServer((_req, res) => held.push(res)));
  return {
    base: `http://${HOST}:${port}`,
    port,
    answer: async () => {
      await until(() => held.length > 0, 3000, 'the request at the server');
      for (const res of held.splice(0)) res.end('ok');
    },
  };
}

/** The app site of the tracked client socket to `port`, once it has one named in this file. */
async function siteOfClientTo(monitor: SocketMonitor, port: number): Promise<string | undefined> {
  let site: string | undefined;
  await until(
    () => {
      const socket = monitor
        .sockets()
        .find((s) => s.direction === 'client' && s.remotePort === port);
      site = socket === undefined ? undefined : monitor.describe(socket.id)?.appSite;
      return site?.includes(here) === true;
    },
    3000,
    `a client socket to ${port} named in ${here}`,
  );
  return site;
}

describe('got requests are named by the app line that made them', () => {
  it('got.stream()', async () => {
    const monitor = startMonitor();
    const { base, port, answer } = await server();
    const line = nextLine();
    const stream = got.stream(`${base}/stream?token=1`);
    stream.resume();
    const site = await siteOfClientTo(monitor, port);
    expect(site).toMatch(new RegExp(`${here}:${line}:\\d+$`));
    await answer();
    await new Promise((resolve) => stream.on('end', resolve));
  });

  it('got() (the promise API)', async () => {
    const monitor = startMonitor();
    const { base, port, answer } = await server();
    const line = nextLine();
    const pending = got(`${base}/promise`);
    const site = await siteOfClientTo(monitor, port);
    expect(site).toMatch(new RegExp(`${here}:${line}:\\d+$`));
    await answer();
    expect((await pending).body).toBe('ok');
  });

  it.runIf(announcesRequestCreated())(
    'a got request on a reused keep-alive socket, by its own line (Node 22+)',
    async () => {
      const monitor = startMonitor();
      const { base, port, answer } = await server();
      const agent = new http.Agent({ keepAlive: true });
      const first = got(`${base}/first`, { agent: { http: agent } });
      await siteOfClientTo(monitor, port);
      await answer();
      await first;
      const line = nextLine();
      const second = got(`${base}/second`, { agent: { http: agent } });
      await until(() => monitor.sockets().filter((s) => s.remotePort === port).length === 1, 1000);
      const [socket] = monitor.sockets().filter((s) => s.remotePort === port);
      await until(
        () => monitor.describe(socket!.id)?.appSite?.includes(`${here}:${line}:`) === true,
        3000,
        'the reused socket named by the second call',
      );
      await answer();
      await second;
      agent.destroy();
    },
  );
});
