#!/usr/bin/env node
/**
 * `closewait run -- <command>` and `closewait inspect <pid>`. The shebang above stays first:
 * tsc copies it into dist/esm/cli.js, which package.json's "bin" names.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CliIo, ENV_HELP, EXIT, HELP } from './cli/help.js';
import { inspectCommand } from './cli/inspect.js';
import { runCommand } from './cli/run.js';
import { packageRoot } from './package-paths.js';

// `closewait inspect --watch 1 <pid> | head`: once the reader has gone (EPIPE), there is nobody
// left to write for. Not a crash with a stack: the command ends quietly (a watch stops at its
// next look) with the exit code of what it found.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') return;
  process.stderr.write(`closewait: cannot write the output: ${error.message}\n`);
  process.exit(EXIT.trouble);
});

const io: CliIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8'));
    return String(pkg.version);
  } catch {
    return 'unknown';
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run':
      return runCommand(rest, io);
    case 'inspect':
      return inspectCommand(rest, io);
    case 'help':
      if (rest[0] === 'run' || rest[0] === 'inspect') {
        io.out(HELP[rest[0]]);
        return EXIT.clean;
      }
      io.out(`${HELP.main}\n${ENV_HELP}`);
      return EXIT.clean;
    case '-h':
    case '--help':
      io.out(`${HELP.main}\n${ENV_HELP}`);
      return EXIT.clean;
    case '-v':
    case '--version':
      io.out(`${version()}\n`);
      return EXIT.clean;
    case undefined:
      io.err(`${HELP.main}\n${ENV_HELP}`);
      return EXIT.trouble;
    default:
      io.err(`closewait: unknown command ${JSON.stringify(command)}\n\n${HELP.main}`);
      return EXIT.trouble;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    io.err(
      `closewait: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = EXIT.trouble;
  },
);
