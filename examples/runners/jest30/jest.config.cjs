// testEnvironment 'closewait/jest': each test is checked for sockets it leaves half-closed once
// it and all of its hooks are done; a test that leaked fails with the line that made the socket.
const checked = { testEnvironment: 'closewait/jest' };
const fakeTimers = { enableGlobally: true };

module.exports = {
  projects: [
    // CommonJS, through babel-jest (Jest's default transform for .js).
    { ...checked, displayName: 'cjs', testMatch: ['<rootDir>/cjs/sockets.test.js'] },
    {
      ...checked,
      displayName: 'cjs-fake-timers',
      testMatch: ['<rootDir>/cjs/fake-timers.test.js'],
      fakeTimers,
    },
    // Native ESM: run with NODE_OPTIONS=--experimental-vm-modules (Jest's requirement).
    { ...checked, displayName: 'esm', testMatch: ['<rootDir>/esm/sockets.test.mjs'] },
    {
      ...checked,
      displayName: 'esm-fake-timers',
      testMatch: ['<rootDir>/esm/fake-timers.test.mjs'],
      fakeTimers,
    },
    // TypeScript through ts-jest (tsconfig.json: isolatedModules, so no type check here).
    {
      ...checked,
      displayName: 'ts-jest',
      testMatch: ['<rootDir>/ts/sockets.test.ts'],
      transform: { '^.+\\.ts$': 'ts-jest' },
    },
  ],
};
