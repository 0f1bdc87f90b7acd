import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { until, waitFor } from './fixtures/net.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const children = new Set<ChildProcess>();
afterAll(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    }
  }
  children.clear();
});

/** Starts an example as the README says (`node examples/<x>/server.js`, dist/ built), port 0. */
async function startExample(name: string) {
  const child = spawn(process.execPath, [`examples/${name}/server.js`], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk;
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk;
  });
  await until(() => stdout.includes('/metrics | grep'), 10_000, `${name} example prints its URLs`);
  const base = /on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)![1]!;
  return { base, output: () => ({ stdout, stderr }) };
}

/** What the printed curl command does: an upgrade on /leak, then hanging up. */
async function leakOnce(base: string): Promise<void> {
  const { port } = new URL(base);
  const socket = net.connect(Number(port), '127.0.0.1');
  await once(socket, 'connect');
  const switched = waitFor(socket, 'data');
  socket.write('GET /leak HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: leak\r\n\r\n');
  await switched;
  socket.destroy();
}

async function healthStatus(base: string): Promise<{ code: number; status: string }> {
  const response = await fetch(`${base}/health/sockets`);
  const body = (await response.json()) as { status: string };
  return { code: response.status, status: body.status };
}

// Concurrent: each waits out its example's 5 s grace; the two waits overlap.
describe.concurrent('examples', () => {
  for (const name of ['express', 'fastify']) {
    it(`${name}: starts with one command, prints where to look, and its leaky route leaks`, async () => {
      const { base, output } = await startExample(name);
      const printed = output().stdout;
      expect(printed).toContain(`health:  ${base}/health/sockets`);
      expect(printed).toContain(`metrics: ${base}/metrics`);
      expect(printed).toContain(`leaky route: GET ${base}/leak`);
      expect(printed).toContain(
        `curl -s --max-time 1 -H 'Connection: Upgrade' -H 'Upgrade: leak' ${base}/leak`,
      );
      expect(await healthStatus(base)).toEqual({ code: 200, status: 'pass' });

      await leakOnce(base);
      // The examples use graceMs 5000: the leak is reported about 5 s after the hang-up.
      const deadline = Date.now() + 10_000;
      let health = await healthStatus(base);
      while (health.status !== 'warn' && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        health = await healthStatus(base);
      }
      expect(health).toEqual({ code: 200, status: 'warn' });
      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).toContain(
        'closewait_leaked_sockets{direction="server",kind="half-closed"} 1',
      );
      const log = () => (name === 'express' ? output().stderr : output().stdout);
      // The child's log line travels through a pipe: it may land after the health answer.
      await until(() => log().includes('"component":"closewait"'), 3000, 'the leak log line');
      expect(log()).toContain('"component":"closewait"');
      expect(log()).toContain('"msg":"CLOSE_WAIT socket leak: the peer closed the connection');
    });
  }
});
