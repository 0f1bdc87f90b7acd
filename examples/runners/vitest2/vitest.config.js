import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['*.test.js'],
    // Checks every test for sockets it leaves half-closed, and fails the test that did.
    setupFiles: ['closewait/vitest'],
  },
});
