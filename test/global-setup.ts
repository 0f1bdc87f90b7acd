import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { measureUnreadBodyBytes } from '../examples/leaks/unread-body-size.js';

export type UnreadBodyClient = 'fetch' | 'undici' | 'http' | 'https';

const tls = {
  keyFile: fileURLToPath(new URL('./fixtures/tls-key.pem', import.meta.url)),
  certFile: fileURLToPath(new URL('./fixtures/tls-cert.pem', import.meta.url)),
};

/** The unread-body tests' sizes, measured once per run on this Node line (see the probe). */
export default async function setup(project: TestProject) {
  const clients: UnreadBodyClient[] = ['fetch', 'undici', 'http', 'https'];
  const sizes = await Promise.all(clients.map((client) => measureUnreadBodyBytes(client, tls)));
  project.provide(
    'unreadBodyBytes',
    Object.fromEntries(clients.map((client, i) => [client, sizes[i]!])) as Record<
      UnreadBodyClient,
      number
    >,
  );
}

declare module 'vitest' {
  export interface ProvidedContext {
    unreadBodyBytes: Record<UnreadBodyClient, number>;
  }
}
