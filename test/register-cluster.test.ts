import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { childEnv, pinoLines, REGISTER_JS, ROOT, spawnNode } from './fixtures/apps/spawn-app.js';

const APP = join(ROOT, 'test/fixtures/apps/cluster-leak-app.cjs');

/** A port nothing listens on now: a fixed CLOSEWAIT_HEALTH_PORT, as a deployment sets one. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function get(url: string) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const request = http.get(url, { agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        body += chunk;
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on('error', reject);
    request.setTimeout(3000, () => request.destroy(new Error(`GET ${url} timed out`)));
  });
}

interface LeaksCheck {
  observedValue: number;
  status: string;
  processes?: number;
  byKind: Record<string, number>;
  groups?: Array<{ pid: number; count: number; kind: string }>;
}

describe('CLOSEWAIT_HEALTH_PORT under node:cluster', () => {
  it('the primary serves the whole cluster: 2 workers leaking 2 sockets each read as 4', async () => {
    const port = await freePort();
    const app = spawnNode(['--import', REGISTER_JS, APP], {
      env: childEnv({
        CLOSEWAIT_GRACE_MS: '200',
        CLOSEWAIT_HEALTH_PORT: String(port),
        CLOSEWAIT_HEALTH_VERBOSE: '1',
        CLOSEWAIT_LOG_LEVEL: 'info',
        APP_LIFETIME_MS: '6000',
      }),
    });
    const [, first, second] = await app.waitFor(
      'stdout',
      /worker (\d+) leaked 2[\s\S]*worker (\d+) leaked 2/,
    );
    const url = `http://127.0.0.1:${port}`;

    let check: LeaksCheck | undefined;
    const deadline = Date.now() + 5000;
    for (;;) {
      const { body } = await get(`${url}/health/sockets`);
      check = JSON.parse(body).checks['closewait:leaks'][0] as LeaksCheck;
      if (check.observedValue === 4 || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(check).toMatchObject({
      observedValue: 4,
      status: 'warn',
      processes: 3,
      byKind: { 'half-closed': 4 },
    });
    // Verbose: each worker's group, named by its pid.
    expect(
      check!.groups?.map(({ pid, count }) => ({ pid, count })).sort((a, b) => a.pid - b.pid),
    ).toEqual(
      [Number(first), Number(second)].sort((a, b) => a - b).map((pid) => ({ pid, count: 2 })),
    );
    const metrics = await get(`${url}/metrics`);
    expect(metrics.body).toContain(
      'closewait_leaked_sockets{direction="server",kind="half-closed"} 4',
    );

    // Nothing of closewait's reached the app's own message handler, and no worker tried the port.
    expect(await app.waitForExit(15_000)).toEqual({ code: 0, signal: null });
    const messages = app.stdout().match(/^app message .*$/gm) ?? [];
    expect(messages).toHaveLength(2);
    for (const message of messages) expect(message).toMatch(/^app message \{"app":"leaked"/);
    expect(app.stderr()).not.toContain('EADDRINUSE');
    const listening = pinoLines(app.stderr()).filter((line) =>
      String(line.msg).includes('health server listening'),
    );
    expect(listening).toHaveLength(1);
  });
});
