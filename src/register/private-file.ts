import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  lstatSync,
  openSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * Why `target` cannot take a file of ours, or undefined when it can (it is a regular file, or
 * nothing yet). A symbolic link is refused rather than replaced: it was put there for a reason
 * we cannot know, and in a shared directory (/tmp) it may have been put there by someone else.
 */
export function targetProblem(target: string): string | undefined {
  let stat: ReturnType<typeof lstatSync>;
  try {
    stat = lstatSync(target);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? undefined : (error as Error).message;
  }
  if (stat.isSymbolicLink()) return `${target} is a symbolic link, which closewait does not follow`;
  if (stat.isDirectory()) {
    return `${target} is a directory; give a file name, such as ${join(target, 'closewait-%p.json')}`;
  }
  if (!stat.isFile()) return `${target} is not a regular file`;
  return undefined;
}

// O_NOFOLLOW beside O_EXCL: O_EXCL alone already fails on a link, but says so only by EEXIST.
const CREATE_NEW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/**
 * Writes `text` to `target` synchronously and atomically, readable by this user only (0600): a
 * temporary file with a random name, created exclusively in the target's directory (so nobody
 * can have made it first, or pointed it elsewhere), then renamed over the target (a rename
 * replaces a link planted at the target; it never writes through it). Never throws: returns
 * why it could not write.
 */
export function writePrivateFile(target: string, text: string): string | undefined {
  const problem = targetProblem(target);
  if (problem !== undefined) return problem;
  const temporary = join(
    dirname(target),
    `.${basename(target)}.${randomBytes(8).toString('hex')}.partial`,
  );
  let fd: number | undefined;
  let created = false;
  try {
    fd = openSync(temporary, CREATE_NEW, 0o600);
    created = true;
    const bytes = Buffer.from(text);
    for (let written = 0; written < bytes.length; ) {
      written += writeSync(fd, bytes, written, bytes.length - written);
    }
    closeSync(fd);
    fd = undefined;
    renameSync(temporary, target);
    return undefined;
  } catch (error) {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        // Closed already: the unlink below is what matters.
      }
    }
    try {
      // Only a file we created: an EEXIST means the name is someone else's.
      if (created) unlinkSync(temporary);
    } catch {
      // Already renamed.
    }
    return error instanceof Error ? error.message : String(error);
  }
}
