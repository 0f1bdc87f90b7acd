export function measureUnreadBodyBytes(
  client: 'fetch' | 'undici' | 'http' | 'https',
  tls?: { keyFile: string; certFile: string },
): Promise<number>;
