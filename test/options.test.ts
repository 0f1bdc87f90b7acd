import { describe, expect, it } from 'vitest';
import { createSocketMonitor, type SocketMonitorOptions } from '../src/index.js';

/** Each wrong value must throw at creation, naming the option and showing the value. */
const wrong: Array<[string, unknown, string]> = [
  ['graceMs', -1, 'graceMs'],
  ['graceMs', '30s', 'graceMs'],
  ['graceMs', Number.NaN, 'graceMs'],
  ['graceMs', Number.POSITIVE_INFINITY, 'graceMs'],
  ['stacks', 'some', 'stacks'],
  ['stacks', { sampleRate: 2 }, 'stacks.sampleRate'],
  ['stacks', { sampleRate: '0.5' }, 'stacks.sampleRate'],
  ['stackLimit', 0, 'stackLimit'],
  ['stackLimit', 2.5, 'stackLimit'],
  ['sweepIntervalMs', 1, 'sweepIntervalMs'],
  ['patchSocketConnect', 'yes', 'patchSocketConnect'],
  ['kernelCheckIntervalMs', 5, 'kernelCheckIntervalMs'],
  ['kernelCheckIntervalMs', 'always', 'kernelCheckIntervalMs'],
  ['autoDestroy', true, 'autoDestroy'],
  ['autoDestroy', {}, 'autoDestroy.afterMs'],
  ['autoDestroy', { afterMs: -5 }, 'autoDestroy.afterMs'],
  ['autoDestroy', { afterMs: 10, maxPerMinute: 0 }, 'autoDestroy.maxPerMinute'],
  ['autoDestroy', { afterMs: 10, filter: 'all' }, 'autoDestroy.filter'],
  ['autoDestroy', { afterMs: 10, dryRun: 1 }, 'autoDestroy.dryRun'],
  ['autoDestroy', { afterMs: 10, kernal: true }, 'autoDestroy.kernal'],
  ['gracems', 100, 'gracems'],
];

describe('options', () => {
  it.each(wrong)('rejects %s = %j with a TypeError naming %s', (name, value, named) => {
    const create = () => createSocketMonitor({ [name]: value } as SocketMonitorOptions);
    expect(create).toThrow(TypeError);
    expect(create).toThrow(`"${named}"`);
    expect(create).toThrow(expect.objectContaining({ code: 'ERR_CLOSEWAIT_INVALID_OPTION' }));
  });

  it('rejects options that are not an object', () => {
    expect(() => createSocketMonitor(42 as unknown as SocketMonitorOptions)).toThrow(TypeError);
  });

  it('fills defaults in one place', () => {
    const monitor = createSocketMonitor();
    expect(monitor.options).toMatchObject({
      graceMs: 30_000,
      stackLimit: 30,
      sweepIntervalMs: 1000,
      patchSocketConnect: false,
      autoDestroy: undefined,
      // /proc/net/tcp is Linux's: the kernel check runs by default there, on its own schedule.
      kernelCheckIntervalMs: process.platform === 'linux' ? 'auto' : 0,
    });
    expect(createSocketMonitor({ kernelCheckIntervalMs: 0 }).options.kernelCheckIntervalMs).toBe(0);
    expect(createSocketMonitor({ kernelCheckIntervalMs: 250 }).options.kernelCheckIntervalMs).toBe(
      250,
    );
    // vitest sets NODE_ENV=test: every stack is captured in tests.
    expect(monitor.options.sampleRate).toBe(1);
    expect(createSocketMonitor({ graceMs: 100 }).options.sweepIntervalMs).toBe(50);
    expect(createSocketMonitor({ stacks: { sampleRate: 0.25 } }).options.sampleRate).toBe(0.25);
  });

  it('start() and stop() are idempotent, and `using` stops the monitor', () => {
    const monitor = createSocketMonitor();
    expect(monitor.start().start().running).toBe(true);
    expect(monitor.stop().stop().running).toBe(false);
    {
      using scoped = createSocketMonitor().start();
      expect(scoped.running).toBe(true);
      monitor.start();
      scoped.stop();
    }
    monitor.stop();
  });
});
