import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

// `npm test` builds dist/ before vitest runs; the demo imports 'closewait' from there.
describe('npm run demo', () => {
  it('prints the grouped report and, on Linux, the kernel rows with the hidden leak', async () => {
    const { stdout } = await run(process.execPath, ['examples/demo.js'], {
      cwd: new URL('..', import.meta.url),
      timeout: 30_000,
    });
    expect(stdout).toMatch(/closewait: 7 leaked sockets .* in 4 groups/);
    expect(stdout).toMatch(
      /\s3\s+\S+\s+half-closed\s+server\s+server 127\.0\.0\.1:\d+ \(listen at examples\/leaks\/half-open-tcp-server\.js/,
    );
    expect(stdout).toContain("GET /live on 'upgrade'");
    expect(stdout).toMatch(/unconsumed-fin\s+client\s+examples\/demo\.js:\d+:\d+ · GET http/);
    if (process.platform === 'linux') {
      expect(stdout).toContain('what the kernel says: 7 sockets of this process in CLOSE_WAIT');
      expect(stdout).toMatch(/unread-fin \(server\)/);
      expect(stdout).toContain('1 leak found only through the kernel');
      expect(stdout).not.toContain('not reported');
    }
  }, 40_000);
});
