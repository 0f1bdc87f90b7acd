import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Measures, once per run, the body sizes the unread-body tests need on this Node line.
    globalSetup: ['./test/global-setup.ts'],
    // Real sockets and real timers: tests share one kernel, so keep files apart in forks.
    pool: 'forks',
    testTimeout: 20_000,
    hookTimeout: 20_000,
    env: { NODE_ENV: 'test' },
    // Dogfood: every test of closewait is itself checked for sockets it leaves half-closed.
    // Run from source; users write setupFiles: ['closewait/vitest']. A test that must leak
    // calls configureSocketLeakCheck(false) from src/integrations/vitest.ts.
    setupFiles: ['./src/integrations/vitest.ts'],
  },
});
