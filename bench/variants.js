/**
 * What runs inside a server process before the app starts: nothing (the baseline), closewait
 * in one of its stack modes, or the async_hooks tracking that generic open-handle tools use.
 */
import { createHook } from 'node:async_hooks';
import { createSocketMonitor } from '../dist/esm/index.js';

export const VARIANTS = ['baseline', 'stacks-none', 'default', 'stacks-all', 'async-hooks'];

export const VARIANT_LABELS = {
  baseline: 'baseline (no monitor)',
  'stacks-none': "closewait stacks: 'none'",
  default: 'closewait default (sampleRate 0.01)',
  'stacks-all': "closewait stacks: 'all'",
  'async-hooks': 'async_hooks init + stack per resource',
};

/**
 * The approach of generic open-handle finders: every async resource recorded with a stack at
 * `init`, forgotten at `destroy`. We keep the Error object and format its stack only if asked
 * (the cheapest faithful version; tools that read `.stack` at once pay more).
 */
function installAsyncHooksTracker() {
  const resources = new Map();
  createHook({
    init(asyncId, type) {
      resources.set(asyncId, { type, error: new Error(type) });
    },
    destroy(asyncId) {
      resources.delete(asyncId);
    },
  }).enable();
  return resources;
}

/** Installs a variant; returns what keeps it alive (a monitor or a map) so it is not collected. */
export function installVariant(variant) {
  switch (variant) {
    case 'baseline':
      return undefined;
    case 'stacks-none':
      return createSocketMonitor({ stacks: 'none' }).start();
    case 'default':
      // The production default: stacks omitted with NODE_ENV unset (the runner removes it).
      if (process.env.NODE_ENV !== undefined) throw new Error('NODE_ENV must be unset');
      return createSocketMonitor().start();
    case 'stacks-all':
      return createSocketMonitor({ stacks: 'all' }).start();
    case 'async-hooks':
      return installAsyncHooksTracker();
    default:
      throw new Error(`unknown variant ${variant}`);
  }
}
