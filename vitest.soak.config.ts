import { defineConfig } from 'vitest/config';

/**
 * `npm run test:soak`: the long reliability runs (test/soak), apart from the normal suite.
 * No closewait/vitest setup file here: the soak measures one monitor, the one it starts.
 */
export default defineConfig({
  test: {
    include: ['test/soak/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 15 * 60_000,
    hookTimeout: 60_000,
    env: { NODE_ENV: 'test', CLOSEWAIT_SOAK: '1' },
  },
});
