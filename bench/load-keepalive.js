/** Keep-alive load: autocannon, a well-kept load generator, on persistent connections. */
import autocannon from 'autocannon';

export async function loadKeepAlive({ port, host, connections, warmupMs, durationMs }) {
  const result = await autocannon({
    url: `http://${host}:${port}/`,
    connections,
    duration: durationMs / 1000,
    warmup: { connections, duration: warmupMs / 1000 },
  });
  const errors = result.errors + result.timeouts + result.non2xx;
  return { requests: result.requests.total, seconds: durationMs / 1000, errors };
}
