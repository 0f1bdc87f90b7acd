/**
 * The kernel's view read synchronously, for the report written at exit: in 'exit' nothing
 * asynchronous completes, and a process that leaked in its last second would otherwise leave
 * with the kernel's view as the last periodic check saw it. It blocks the thread while it reads
 * (about as long as one asynchronous check takes in all), which at exit delays nobody's request.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { SocketRecord } from '../tracking/record.js';
import type { KernelMatch, KernelSnapshot } from './kernel-check.js';
import { CLOSE_WAIT, type KernelSocketRow, parseProcNetTcp } from './proc-net-tcp.js';
import { rowKey, socketKey } from './thread-claims.js';

function readTable(path: string): string {
  try {
    return readFileSync(path, 'latin1');
  } catch {
    // No IPv6 in this kernel: no rows from it.
    return '';
  }
}

/** Inodes of this process's socket fds. Throws when /proc/self/fd cannot be read. */
function ownSocketInodes(): Set<number> {
  const inodes = new Set<number>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith('socket:[')) inodes.add(Number(target.slice(8, -1)));
    } catch {
      // Closed between the listing and the link (the listing's own fd is one such).
    }
  }
  return inodes;
}

/** This process's CLOSE_WAIT rows, or undefined where /proc cannot tell (off Linux, or denied). */
export function readOwnCloseWaitRows(): KernelSocketRow[] | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const rows = [
      ...parseProcNetTcp(readTable('/proc/self/net/tcp'), CLOSE_WAIT),
      ...parseProcNetTcp(readTable('/proc/self/net/tcp6'), CLOSE_WAIT),
    ];
    // The namespace's rows are every process's: the fd scan, one readlink per fd, only if any.
    if (rows.length === 0) return rows;
    const inodes = ownSocketInodes();
    return rows.filter((row) => inodes.has(row.inode));
  } catch {
    return undefined;
  }
}

/** `snapshotKernel()`, synchronously: tracked and unattributed CLOSE_WAIT rows of this process. */
export function snapshotKernelSync(records: Iterable<SocketRecord>): KernelSnapshot {
  const rows = readOwnCloseWaitRows();
  if (rows === undefined) throw new Error('/proc/self/net/tcp or /proc/self/fd could not be read');
  const byKey = new Map<string, KernelSocketRow>();
  for (const row of rows) byKey.set(rowKey(row), row);
  const matched: KernelMatch[] = [];
  if (byKey.size === 0) return { matched, unattributed: [] };
  for (const record of records) {
    const key = socketKey(record);
    const row = key === undefined ? undefined : byKey.get(key);
    if (row === undefined) continue;
    matched.push({ record, row });
    byKey.delete(key!);
  }
  return { matched, unattributed: [...byKey.values()] };
}
