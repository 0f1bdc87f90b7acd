/**
 * The load process: `node bench/load.js <close|keepalive> <port> <warmupMs> <durationMs>
 * <connections>`. Runs apart from the server so the server's core measures only the server.
 * Prints one JSON line: requests completed in the measured window, its seconds, errors.
 */
import { loadClose } from './load-close.js';
import { loadKeepAlive } from './load-keepalive.js';

const [mode, port, warmupMs, durationMs, connections] = process.argv.slice(2);
const options = {
  port: Number(port),
  host: '127.0.0.1',
  connections: Number(connections),
  warmupMs: Number(warmupMs),
  durationMs: Number(durationMs),
};
const result = mode === 'close' ? await loadClose(options) : await loadKeepAlive(options);
process.stdout.write(`${JSON.stringify(result)}\n`);
