/** Load for the per-request benches: `count` requests, 4 at a time, each on its own connection. */
import net from 'node:net';

export async function closeLoad(port, count) {
  let started = 0;
  const one = () =>
    new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.end('GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n');
      });
      socket.on('data', () => {});
      socket.on('error', reject);
      socket.on('close', resolve);
    });
  const worker = async () => {
    while (started < count) {
      started++;
      await one();
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
}

/** Starts a child server (it prints `{"port":n}` first) and resolves with its port. */
export function portOf(child) {
  let stdout = '';
  child.stdout.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (text) => {
      stdout += text;
      const line = stdout.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve(JSON.parse(line).port);
    });
    child.on('exit', (code) => reject(new Error(`server exited early (${code})`)));
  });
}
