import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { parseInspectArgs } from '../src/cli/inspect.js';
import { parseRunArgs } from '../src/cli/run.js';
import { InvalidOptionError } from '../src/errors.js';
import { createSocketMonitor, healthHandler, type SocketMonitorOptions } from '../src/index.js';
import { registerMetrics } from '../src/integrations/prometheus.js';
import { socketLeakScope } from '../src/integrations/testing.js';

/**
 * Every option, given wrong types and out-of-range values: each must fail at creation with a
 * TypeError that names the option (`"name"`, or `"parent.child"` for nested ones) and shows
 * the value received. [option, value, name the message must quote]
 */
const WRONG: Array<[string, unknown, string]> = [
  ['graceMs', '1000', 'graceMs'],
  ['graceMs', true, 'graceMs'],
  ['graceMs', null, 'graceMs'],
  ['graceMs', -1, 'graceMs'],
  ['graceMs', 0, 'graceMs'],
  ['graceMs', Number.NaN, 'graceMs'],
  ['graceMs', Number.POSITIVE_INFINITY, 'graceMs'],
  ['graceMs', 2 ** 31, 'graceMs'],
  ['stacks', 'some', 'stacks'],
  ['stacks', 1, 'stacks'],
  ['stacks', true, 'stacks'],
  ['stacks', null, 'stacks'],
  ['stacks', [], 'stacks'],
  ['stacks', {}, 'stacks'],
  ['stacks', { sampleRate: -0.1 }, 'stacks.sampleRate'],
  ['stacks', { sampleRate: 1.5 }, 'stacks.sampleRate'],
  ['stacks', { sampleRate: Number.NaN }, 'stacks.sampleRate'],
  ['stacks', { sampleRate: '0.5' }, 'stacks.sampleRate'],
  ['stacks', { sampleRate: 0.5, extra: 1 }, 'stacks.extra'],
  ['stackLimit', '30', 'stackLimit'],
  ['stackLimit', null, 'stackLimit'],
  ['stackLimit', 0, 'stackLimit'],
  ['stackLimit', 201, 'stackLimit'],
  ['stackLimit', 2.5, 'stackLimit'],
  ['stackLimit', Number.NaN, 'stackLimit'],
  ['sweepIntervalMs', '250', 'sweepIntervalMs'],
  ['sweepIntervalMs', null, 'sweepIntervalMs'],
  ['sweepIntervalMs', 9, 'sweepIntervalMs'],
  ['sweepIntervalMs', 60_001, 'sweepIntervalMs'],
  ['sweepIntervalMs', Number.POSITIVE_INFINITY, 'sweepIntervalMs'],
  ['patchSocketConnect', 'yes', 'patchSocketConnect'],
  ['patchSocketConnect', 1, 'patchSocketConnect'],
  ['patchSocketConnect', {}, 'patchSocketConnect'],
  ['autoDestroy', true, 'autoDestroy'],
  ['autoDestroy', 'on', 'autoDestroy'],
  ['autoDestroy', 1000, 'autoDestroy'],
  ['autoDestroy', null, 'autoDestroy'],
  ['autoDestroy', [], 'autoDestroy'],
  ['autoDestroy', {}, 'autoDestroy.afterMs'],
  ['autoDestroy', { afterMs: '10' }, 'autoDestroy.afterMs'],
  ['autoDestroy', { afterMs: -1 }, 'autoDestroy.afterMs'],
  ['autoDestroy', { afterMs: 2 ** 31 }, 'autoDestroy.afterMs'],
  ['autoDestroy', { afterMs: 10, maxPerMinute: 0 }, 'autoDestroy.maxPerMinute'],
  ['autoDestroy', { afterMs: 10, maxPerMinute: '5' }, 'autoDestroy.maxPerMinute'],
  ['autoDestroy', { afterMs: 10, dryRun: 'yes' }, 'autoDestroy.dryRun'],
  ['autoDestroy', { afterMs: 10, unconsumedFin: 1 }, 'autoDestroy.unconsumedFin'],
  ['autoDestroy', { afterMs: 10, kernel: 'x' }, 'autoDestroy.kernel'],
  ['autoDestroy', { afterMs: 10, filter: 'all' }, 'autoDestroy.filter'],
  ['autoDestroy', { afterMs: 10, after: 5 }, 'autoDestroy.after'],
  ['kernelCheckIntervalMs', '1000', 'kernelCheckIntervalMs'],
  ['kernelCheckIntervalMs', null, 'kernelCheckIntervalMs'],
  ['kernelCheckIntervalMs', -1, 'kernelCheckIntervalMs'],
  ['kernelCheckIntervalMs', 50, 'kernelCheckIntervalMs'],
  ['kernelCheckIntervalMs', 86_400_001, 'kernelCheckIntervalMs'],
  ['kernelCheckIntervalMs', Number.NaN, 'kernelCheckIntervalMs'],
  ['logger', 'pino', 'logger'],
  ['logger', true, 'logger'],
  ['logger', null, 'logger'],
  ['logger', {}, 'logger'],
  ['logger', { info() {}, warn() {}, error() {} }, 'logger'],
  ['logRate', 'fast', 'logRate'],
  ['logRate', 10, 'logRate'],
  ['logRate', null, 'logRate'],
  ['logRate', [], 'logRate'],
  ['logRate', { perSite: 0 }, 'logRate.perSite'],
  ['logRate', { perSite: 1.5 }, 'logRate.perSite'],
  ['logRate', { perSite: '10' }, 'logRate.perSite'],
  ['logRate', { intervalMs: 5 }, 'logRate.intervalMs'],
  ['logRate', { intervalMs: '60000' }, 'logRate.intervalMs'],
  ['logRate', { perMinute: 10 }, 'logRate.perMinute'],
  ['summaryIntervalMs', '1000', 'summaryIntervalMs'],
  ['summaryIntervalMs', null, 'summaryIntervalMs'],
  ['summaryIntervalMs', -1, 'summaryIntervalMs'],
  ['summaryIntervalMs', 5, 'summaryIntervalMs'],
  ['summaryIntervalMs', Number.POSITIVE_INFINITY, 'summaryIntervalMs'],
  ['keepQuery', 'yes', 'keepQuery'],
  ['keepQuery', 1, 'keepQuery'],
  ['gracems', 100, 'gracems'],
];

/** `null` is not "unset": a boolean option given null fails like any other wrong value. */
const NULL_REJECTED: Array<[string, unknown, string]> = [
  ['patchSocketConnect', null, 'patchSocketConnect'],
  ['keepQuery', null, 'keepQuery'],
  ['autoDestroy', { afterMs: 10, dryRun: null }, 'autoDestroy.dryRun'],
];

function expectRejected(name: string, value: unknown, named: string): void {
  let error: unknown;
  try {
    createSocketMonitor({ [name]: value } as SocketMonitorOptions);
  } catch (caught) {
    error = caught;
  }
  expectInvalidOption(error, named);
}

/** A TypeError with the stable code, naming the option, showing the value. */
function expectInvalidOption(error: unknown, named: string): void {
  expect(error).toBeInstanceOf(TypeError);
  expect(error).toBeInstanceOf(InvalidOptionError);
  expect(error).toMatchObject({ code: 'ERR_CLOSEWAIT_INVALID_OPTION', option: named });
  const message = (error as TypeError).message;
  expect(message).toContain(`"${named}"`);
  expect(message).toContain('received');
}

function thrownBy(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  return undefined;
}

/** `monitor.options` keys that are spelled differently from the option that sets them. */
const RESOLVED_FROM: Record<string, string> = { sampleRate: 'stacks' };

describe('bad options', () => {
  it.each(WRONG)('%s = %j fails with a TypeError naming "%s"', (name, value, named) => {
    expectRejected(name, value, named);
  });

  it.each(NULL_REJECTED)('%s = %j fails with a TypeError naming "%s"', expectRejected);

  it('covers every option the monitor has (a new option needs bad-input cases here)', () => {
    const covered = new Set(WRONG.map(([name]) => name));
    const options = Object.keys(createSocketMonitor({ logger: false }).options);
    const missing = options.filter((key) => !covered.has(RESOLVED_FROM[key] ?? key));
    expect(missing).toEqual([]);
  });

  it('options that are not an object fail with a TypeError', () => {
    for (const value of ['x', 1, true, null, [], () => {}]) {
      const error = thrownBy(() => createSocketMonitor(value as unknown as SocketMonitorOptions));
      expectInvalidOption(error, 'options');
    }
  });

  it('the health, testing and metrics options fail the same way, with the same code', () => {
    const monitor = createSocketMonitor({ logger: false });
    expectInvalidOption(
      thrownBy(() => healthHandler(monitor, { warnAt: 0 })),
      'warnAt',
    );
    expectInvalidOption(
      thrownBy(() => healthHandler(monitor, { verbose: 'yes' as unknown as boolean })),
      'verbose',
    );
    expectInvalidOption(
      thrownBy(() => healthHandler(monitor, { failAt: 3, extra: 1 } as object)),
      'extra',
    );
    expectInvalidOption(
      thrownBy(() => socketLeakScope({ mode: 'all' as 'open' })),
      'mode',
    );
    expectInvalidOption(
      thrownBy(() => socketLeakScope({ ignore: { ports: [70_000] } })),
      'ignore.ports[0]',
    );
    expectInvalidOption(
      thrownBy(() => registerMetrics(monitor, { prefix: 'bad prefix' })),
      'prefix',
    );
  });

  it("the CLI's option values fail the same way", () => {
    expectInvalidOption(parseInspectArgs(['1', '--watch=99999999999']), '--watch');
    expectInvalidOption(parseInspectArgs(['--watch', '0.01', '1']), '--watch');
    expectInvalidOption(parseInspectArgs(['--watch=soon', '1']), '--watch');
    expectInvalidOption(parseRunArgs(['--report-json']), '--report-json');
    expectInvalidOption(parseRunArgs(['--report-json=', 'node']), '--report-json');
  });

  it('track() rejects what is not a socket, and a direction that is not one', () => {
    const monitor = createSocketMonitor({ logger: false });
    for (const value of [null, undefined, 1, 'socket', {}]) {
      expect(() => monitor.track(value as unknown as net.Socket)).toThrow(TypeError);
    }
    const socket = new net.Socket();
    expectInvalidOption(
      thrownBy(() => monitor.track(socket, { direction: 'up' as unknown as 'client' })),
      'direction',
    );
    socket.destroy();
  });
});
