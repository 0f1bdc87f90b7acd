import http from 'node:http';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { socketLeakScope } from '../src/integrations/testing.js';
import { configureSocketLeakCheck } from '../src/integrations/vitest.js';
import { redactTarget } from '../src/report/redact.js';
import { holdUpgrades } from './fixtures/leaky-upgrade.js';
import { nextLeak, startMonitor } from './fixtures/monitor.js';
import { connect, listen, waitFor } from './fixtures/net.js';
import { capturePino } from './fixtures/pino-capture.js';

const SECRET = 'S3CRET-value';

/** An upgrade whose absolute-form target carries a password, a session id and a token. */
async function leakWithSecrets(port: number): Promise<Socket> {
  const client = await connect(port);
  const switched = waitFor(client, 'data');
  const target = `http://user:${SECRET}@127.0.0.1:${port}/ws;jsessionid=${SECRET}?token=${SECRET}#${SECRET}`;
  client.write(
    `GET ${target} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: leaky\r\n\r\n`,
  );
  await switched;
  client.end();
  return client;
}

describe('secrets in request targets', () => {
  it('never reach leaks(), leak events, logs, the report or a SocketLeakError', async () => {
    configureSocketLeakCheck(false); // this test leaks on purpose, and closes it itself
    const { logger, lines } = capturePino('info');
    const monitor = startMonitor({ logger });
    const scope = socketLeakScope({ monitor, timeoutMs: 0 });
    const events: unknown[] = [];
    monitor.on('leak', (leak) => events.push(leak));
    const server = http.createServer();
    const taken = holdUpgrades(server);
    const port = await listen(server);
    const client = await leakWithSecrets(port);
    const leak = await nextLeak(monitor, (candidate) => candidate.remotePort === client.localPort);

    expect(leak.request?.url).toBe(`http://127.0.0.1:${port}/ws`);
    const error = await scope.assert().then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(error).toBeInstanceOf(Error);
    const everything = JSON.stringify([
      monitor.leaks(),
      events,
      lines,
      monitor.report(),
      String(monitor.report()),
      monitor.describe(leak.id),
      String(error),
    ]);
    expect(everything).toContain('/ws');
    expect(everything).not.toContain(SECRET);
    for (const socket of taken) socket.destroy();
  });

  it('keep their query with keepQuery: true, and still lose userinfo and matrix parameters', async () => {
    configureSocketLeakCheck(false);
    const monitor = startMonitor({ keepQuery: true });
    const server = http.createServer();
    const taken = holdUpgrades(server);
    const port = await listen(server);
    const client = await leakWithSecrets(port);
    const leak = await nextLeak(monitor, (candidate) => candidate.remotePort === client.localPort);
    expect(leak.request?.url).toBe(`http://127.0.0.1:${port}/ws?token=${SECRET}`);
    for (const socket of taken) socket.destroy();
  });

  it('are cut from every form of target', () => {
    expect(redactTarget('/a/b?x=1#f', false)).toBe('/a/b');
    expect(redactTarget('/a;jsessionid=1/b;v=2?x=1', true)).toBe('/a/b?x=1');
    expect(redactTarget('https://u:p@host:8443/p', false)).toBe('https://host:8443/p');
    expect(redactTarget('ws://a@b@host', false)).toBe('ws://host');
    expect(redactTarget('http://host/p@q', false)).toBe('http://host/p@q');
    expect(redactTarget('host:443', false)).toBe('host:443'); // CONNECT authority-form
    expect(redactTarget('//u:p@host/x', false)).toBe('//host/x');
  });
});
