import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';

const linux = process.platform === 'linux';
const FD_LIMIT = 64;

describe.runIf(linux)(
  `a kernel check out of descriptors (Linux: bash ulimit -n ${FD_LIMIT})`,
  () => {
    it('fails visibly and resolves nothing: the unread-fin leak stays', async () => {
      const script = new URL('./fixtures/fd-exhausted-kernel-check.mjs', import.meta.url).pathname;
      const child = spawn(
        'bash',
        ['-c', `ulimit -n ${FD_LIMIT} && exec "$0" "$@"`, process.execPath, script],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk) => (stdout += chunk));
      child.stderr.on('data', (chunk) => (stderr += chunk));
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const [code] = await once(child, 'exit');
      clearTimeout(timer);
      expect(code, stderr).toBe(0);
      const seen = JSON.parse(stdout);

      expect(seen.taken).toBeGreaterThan(0);
      expect(seen.failed).toMatchObject({
        supported: true,
        code: 'ERR_CLOSEWAIT_KERNEL_READ',
        causeCode: 'EMFILE',
        hiddenLeakIds: [],
      });
      expect(seen.failed.reason).toContain('EMFILE');
      // Nothing was resolved from what the failed check did not see.
      expect(seen.resolved).toEqual([]);
      expect(seen.leaksWhileFailed).toContain(seen.leakId);
      // Once descriptors are back, the kernel still shows the leak, and the check says so.
      expect(seen.after).toMatchObject({ supported: true, hiddenLeakIds: [seen.leakId] });
      expect(seen.after.code).toBeUndefined();
      expect(seen.leaksAfter).toContain(seen.leakId);
    }, 30_000);
  },
);
