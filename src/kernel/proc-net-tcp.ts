/**
 * Parses Linux's /proc/net/tcp and /proc/net/tcp6: one row per TCP socket in the network
 * namespace, all processes together. Column layout (kernel Documentation/networking/proc_net_tcp):
 *   sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
 * Addresses are hex in the kernel's byte order: IPv4 as one little-endian 32-bit word, IPv6 as
 * four little-endian words.
 */

export const TCP_STATES: Readonly<Record<string, string>> = {
  '01': 'ESTABLISHED',
  '02': 'SYN_SENT',
  '03': 'SYN_RECV',
  '04': 'FIN_WAIT1',
  '05': 'FIN_WAIT2',
  '06': 'TIME_WAIT',
  '07': 'CLOSE',
  '08': 'CLOSE_WAIT',
  '09': 'LAST_ACK',
  '0A': 'LISTEN',
  '0B': 'CLOSING',
  '0C': 'NEW_SYN_RECV',
};

export const CLOSE_WAIT = '08';

export interface KernelSocketRow {
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  state: string;
  /** Bytes we queued that the peer has not acknowledged. */
  sendQueue: number;
  /** The kernel's receive queue as it reports it: for CLOSE_WAIT, an unread FIN counts as 1. */
  receiveQueue: number;
  /**
   * Bytes received that the process has not read. In CLOSE_WAIT the receive queue counts the
   * peer's FIN as one byte until the process reads it (measured: 1,000 unread bytes show as
   * 1,001; 0 once the FIN is read), so this is the queue less that byte.
   */
  unreadBytes: number;
  uid: number;
  inode: number;
}

function ipv4FromHex(hex: string): string | undefined {
  if (!/^[0-9A-Fa-f]{8}$/.test(hex)) return undefined;
  const word = Number.parseInt(hex, 16);
  // Little-endian: the lowest byte is the first octet.
  return `${word & 0xff}.${(word >>> 8) & 0xff}.${(word >>> 16) & 0xff}.${word >>> 24}`;
}

function ipv6FromHex(hex: string): string | undefined {
  if (!/^[0-9A-Fa-f]{32}$/.test(hex)) return undefined;
  const bytes: number[] = [];
  for (let word = 0; word < 4; word++) {
    const chunk = hex.slice(word * 8, word * 8 + 8);
    for (let byte = 3; byte >= 0; byte--) {
      bytes.push(Number.parseInt(chunk.slice(byte * 2, byte * 2 + 2), 16));
    }
  }
  const isV4Mapped =
    bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (isV4Mapped) return `::ffff:${bytes.slice(12).join('.')}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return compressIpv6(groups);
}

/** RFC 5952 text form, the one Node's `socket.remoteAddress` uses: longest zero run as `::`. */
function compressIpv6(groups: string[]): string {
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === '0') j++;
    if (j - i > bestLength && j - i >= 2) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  if (bestStart === -1) return groups.join(':');
  const head = groups.slice(0, bestStart).join(':');
  const tail = groups.slice(bestStart + bestLength).join(':');
  return `${head}::${tail}`;
}

function endpointOf(text: string | undefined): [string, number] | undefined {
  if (text === undefined) return undefined;
  const colon = text.indexOf(':');
  if (colon === -1) return undefined;
  const hexAddress = text.slice(0, colon);
  const port = Number.parseInt(text.slice(colon + 1), 16);
  const address = hexAddress.length === 8 ? ipv4FromHex(hexAddress) : ipv6FromHex(hexAddress);
  if (address === undefined || !Number.isInteger(port)) return undefined;
  return [address, port];
}

/** The fourth whitespace-separated field (`st`), without splitting the whole line. */
function stateField(line: string): string | undefined {
  let position = 0;
  for (let field = 0; field < 4; field++) {
    while (line.charCodeAt(position) === 32) position++;
    const start = position;
    while (position < line.length && line.charCodeAt(position) !== 32) position++;
    if (position === start) return undefined;
    if (field === 3) return line.slice(start, position);
  }
  return undefined;
}

/**
 * Rows of one /proc/net/tcp{,6} text. `wantState` keeps only rows in that state (hex code): the
 * state column is checked before anything else is parsed, so a table of 20,000 sockets costs a
 * split per line and a full parse only for the rows asked for. Malformed lines are skipped.
 */
export function parseProcNetTcp(text: string, wantState?: string): KernelSocketRow[] {
  const rows: KernelSocketRow[] = [];
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    // Most rows of a busy host are other states (TIME_WAIT, ESTABLISHED): read the state field
    // alone first, and split only the rows asked for.
    if (wantState !== undefined && stateField(line) !== wantState) continue;
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10) continue;
    const state = fields[3]!;
    const local = endpointOf(fields[1]);
    const remote = endpointOf(fields[2]);
    const queues = fields[4]!.split(':');
    const sendQueue = Number.parseInt(queues[0] ?? '', 16);
    const receiveQueue = Number.parseInt(queues[1] ?? '', 16);
    const uid = Number(fields[7]);
    const inode = Number(fields[9]);
    if (local === undefined || remote === undefined) continue;
    if (![sendQueue, receiveQueue, uid, inode].every(Number.isFinite)) continue;
    rows.push({
      localAddress: local[0],
      localPort: local[1],
      remoteAddress: remote[0],
      remotePort: remote[1],
      state: TCP_STATES[state] ?? state,
      sendQueue,
      receiveQueue,
      unreadBytes: state === CLOSE_WAIT ? Math.max(0, receiveQueue - 1) : receiveQueue,
      uid,
      inode,
    });
  }
  return rows;
}
