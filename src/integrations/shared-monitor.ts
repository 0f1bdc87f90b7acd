/**
 * The one monitor that test-suite assertions share in a process. Every copy of closewait/testing
 * finds it in the same global slot: the ESM and the CommonJS build, two installed versions, and
 * the fresh module registry a runner loads per test file (Vitest without isolation, Mocha,
 * node:test). A monitor per copy would subscribe to every channel once more per test file and
 * never stop.
 *
 * Jest gives each test file its own global object as well (a vm context), so there the slot is
 * filled by the closewait/jest test environment, which lives outside the test files' contexts
 * and hands its monitor to each of them.
 */
import { createSocketMonitor, type SocketMonitor } from '../monitor.js';

/** `Symbol.for`, not `Symbol()`: the same key in every copy and every realm. */
export const SHARED_SLOT: unique symbol = Symbol.for('closewait.testing') as never;

/** What the slot holds. Fields are only ever added, so that older copies can read a newer one. */
export interface SharedTestingState {
  version: 1;
  monitor: SocketMonitor;
}

type Slotted = { [SHARED_SLOT]?: SharedTestingState };

function isState(value: unknown): value is SharedTestingState {
  const state = value as Partial<SharedTestingState> | null | undefined;
  return (
    typeof state === 'object' &&
    state !== null &&
    typeof state.monitor === 'object' &&
    state.monitor !== null &&
    typeof state.monitor.sockets === 'function'
  );
}

/**
 * Every stack captured: an assertion names the line of each leak. No logger: the failed
 * assertion is the report, and a test run should not print leak lines.
 */
export function createTestingMonitor(): SocketMonitor {
  return createSocketMonitor({ stacks: 'all', logger: false }).start();
}

/** The state in `holder`'s slot, made (and its monitor started) when the slot is empty. */
export function sharedTestingState(holder: object = globalThis): SharedTestingState {
  const slotted = holder as Slotted;
  const found = slotted[SHARED_SLOT];
  if (isState(found)) {
    // Restarted if someone stopped it: a stopped shared monitor would fail every assertion.
    if (found.monitor.running !== true) found.monitor.start();
    return found;
  }
  const state: SharedTestingState = { version: 1, monitor: createTestingMonitor() };
  // Not enumerable: a runner that lists globals (Jest's leak checks, Mocha's --check-leaks) has
  // nothing new to report.
  Object.defineProperty(holder, SHARED_SLOT, { value: state, configurable: true, writable: true });
  return state;
}
