/**
 * The kernel check read synchronously, for the report written at exit: in 'exit' nothing
 * asynchronous completes, and a process that leaked in its last second would otherwise leave
 * with the kernel's view as the last periodic check saw it. It blocks the thread while it reads
 * (about as long as one asynchronous check takes in all), which at exit delays nobody's request.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { SocketRecord } from '../tracking/record.js';
import type { KernelMatch, KernelSnapshot } from './kernel-check.js';
import { CLOSE_WAIT, type KernelSocketRow, parseProcNetTcp } from './proc-net-tcp.js';
import { kernelViewUnsupported } from './process-sockets.js';
import { rowKey, socketKey } from './thread-claims.js';

function readTableSync(path: string): string {
  try {
    return readFileSync(path, 'latin1');
  } catch {
    // No IPv6 in this kernel, or no /proc/net/tcp6 in this namespace: no rows from it.
    return '';
  }
}

function socketInodesOfSelfSync(): Set<number> {
  const inodes = new Set<number>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith('socket:[')) inodes.add(Number(target.slice(8, -1)));
    } catch {
      // The fd closed between readdir and readlink.
    }
  }
  return inodes;
}

/** `snapshotKernel()`, synchronously: tracked and unattributed CLOSE_WAIT rows of this process. */
export function snapshotKernelSync(records: Iterable<SocketRecord>): KernelSnapshot {
  const unsupported = kernelViewUnsupported();
  if (unsupported !== undefined) throw new Error(unsupported);
  const byKey = new Map<string, KernelSocketRow>();
  for (const path of ['/proc/self/net/tcp', '/proc/self/net/tcp6']) {
    for (const row of parseProcNetTcp(readTableSync(path), CLOSE_WAIT)) {
      byKey.set(rowKey(row), row);
    }
  }
  const matched: KernelMatch[] = [];
  if (byKey.size === 0) return { matched, unattributed: [] };
  for (const record of records) {
    const key = socketKey(record);
    const row = key === undefined ? undefined : byKey.get(key);
    if (row === undefined) continue;
    matched.push({ record, row });
    byKey.delete(key!);
  }
  if (byKey.size === 0) return { matched, unattributed: [] };
  const inodes = socketInodesOfSelfSync();
  return { matched, unattributed: [...byKey.values()].filter((row) => inodes.has(row.inode)) };
}
