import type { PinoLikeLogger } from '../options.js';

type LevelName = 'error' | 'warn' | 'info';
type ChildLogger = ReturnType<PinoLikeLogger['child']>;

/**
 * The app's logger seen through a child `{ component: 'closewait' }`, with every call caught: a
 * logger that throws (a broken transport, a bad serializer) must never throw into the app from
 * our timers or its sockets' events.
 */
export class SafeLog {
  readonly #logger: ChildLogger;
  #complained = false;

  constructor(logger: PinoLikeLogger) {
    let child: ChildLogger;
    try {
      child = logger.child({ component: 'closewait' });
    } catch (error) {
      child = logger;
      this.#complain(error);
    }
    this.#logger = child;
  }

  /** False when the level is off, so a line is never built for nothing. */
  enabled(level: LevelName): boolean {
    try {
      return this.#logger.isLevelEnabled?.(level) ?? true;
    } catch {
      return true;
    }
  }

  write(level: LevelName, fields: object, message: string): void {
    try {
      this.#logger[level](fields, message);
    } catch (error) {
      this.#complain(error);
    }
  }

  /**
   * Once per logger: the logger itself cannot say it is broken, and a warning per line would
   * flood the process's stderr instead.
   */
  #complain(error: unknown): void {
    if (this.#complained) return;
    this.#complained = true;
    const message = error instanceof Error ? error.message : String(error);
    process.emitWarning(`closewait: the logger threw; leak lines may be missing: ${message}`, {
      code: 'CLOSEWAIT_LOGGER',
    });
  }
}
