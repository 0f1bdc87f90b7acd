/**
 * Parses Linux's /proc/net/tcp and /proc/net/tcp6: one row per TCP socket in the network
 * namespace, all processes together. Column layout (kernel Documentation/networking/proc_net_tcp):
 *   sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
 * Addresses are hex in the kernel's byte order: IPv4 as one little-endian 32-bit word, IPv6 as
 * four little-endian words.
 *
 * The parser works on the bytes as read, not on decoded text: a busy host's table is mostly
 * rows nobody asked for (TIME_WAIT, ESTABLISHED), and each of those costs a scan to its state
 * column and nothing else.
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

/** Keep every row, whatever its state. */
export const ANY_STATE = -1;

/** A state's hex code (`'08'`) as the number rows are compared with; ANY_STATE for none. */
export function stateCode(wantState: string | undefined): number {
  if (wantState === undefined) return ANY_STATE;
  if (!/^[0-9A-Fa-f]{2}$/.test(wantState)) throw new RangeError(`not a TCP state: ${wantState}`);
  return Number.parseInt(wantState, 16);
}

const SPACE = 0x20;
const NEWLINE = 0x0a;
const COLON = 0x3a;

function hexDigit(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  const lower = byte | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x57 : -1;
}

/** bytes[start, end) as hex, 1 to 8 digits (so never above 2^32 - 1); -1 when it is not that. */
function hexAt(bytes: Uint8Array, start: number, end: number): number {
  if (end <= start || end - start > 8) return -1;
  let value = 0;
  for (let i = start; i < end; i++) {
    const digit = hexDigit(bytes[i]!);
    if (digit === -1) return -1;
    value = value * 16 + digit;
  }
  return value;
}

/** bytes[start, end) as a decimal of 1 to 15 digits (a safe integer); -1 when it is not that. */
function decimalAt(bytes: Uint8Array, start: number, end: number): number {
  if (end <= start || end - start > 15) return -1;
  let value = 0;
  for (let i = start; i < end; i++) {
    const digit = bytes[i]! - 0x30;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}

/** Eight hex digits, one little-endian word: the lowest byte (last pair) is the first octet. */
function ipv4At(bytes: Uint8Array, start: number): string | undefined {
  const a = hexAt(bytes, start + 6, start + 8);
  const b = hexAt(bytes, start + 4, start + 6);
  const c = hexAt(bytes, start + 2, start + 4);
  const d = hexAt(bytes, start, start + 2);
  if (a < 0 || b < 0 || c < 0 || d < 0) return undefined;
  return `${a}.${b}.${c}.${d}`;
}

/** 32 hex digits, four little-endian words. */
function ipv6At(bytes: Uint8Array, start: number): string | undefined {
  const octets: number[] = new Array(16);
  for (let word = 0; word < 4; word++) {
    for (let byte = 0; byte < 4; byte++) {
      const at = start + word * 8 + (3 - byte) * 2;
      const value = hexAt(bytes, at, at + 2);
      if (value < 0) return undefined;
      octets[word * 4 + byte] = value;
    }
  }
  let mapped = octets[10] === 0xff && octets[11] === 0xff;
  for (let i = 0; mapped && i < 10; i++) mapped = octets[i] === 0;
  if (mapped) return `::ffff:${octets[12]}.${octets[13]}.${octets[14]}.${octets[15]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((octets[i]! << 8) | octets[i + 1]!).toString(16));
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

/** Start and end of the fields found so far on the line being parsed (one at a time). */
const FIELDS = 10;
const fieldStart = new Int32Array(FIELDS);
const fieldEnd = new Int32Array(FIELDS);
let lineBytes: Buffer = Buffer.alloc(0);
let lineEnd = 0;
/** How many fields of the current line were found: 4 after the state check, FIELDS after all. */
let fieldsFound = 0;

/** Finds the fields after the ones found so far, up to `count`; false when the line is shorter. */
function findFields(count: number): boolean {
  const bytes = lineBytes;
  let position = fieldsFound === 0 ? fieldStart[0]! : fieldEnd[fieldsFound - 1]!;
  for (let field = fieldsFound; field < count; field++) {
    while (position < lineEnd && bytes[position] === SPACE) position++;
    if (position === lineEnd) return false;
    fieldStart[field] = position;
    while (position < lineEnd && bytes[position] !== SPACE) position++;
    fieldEnd[field] = position;
  }
  fieldsFound = count;
  return true;
}

/** `address:port` of field `field`; undefined for anything the kernel would not print. */
function endpointAt(field: number): [string, number] | undefined {
  const bytes = lineBytes;
  const start = fieldStart[field]!;
  const end = fieldEnd[field]!;
  const colon = bytes.indexOf(COLON, start);
  if (colon === -1 || colon >= end) return undefined;
  const port = hexAt(bytes, colon + 1, end);
  if (port < 0 || port > 0xffff) return undefined;
  const address =
    colon - start === 8
      ? ipv4At(bytes, start)
      : colon - start === 32
        ? ipv6At(bytes, start)
        : undefined;
  return address === undefined ? undefined : [address, port];
}

/**
 * The line being parsed, as `parseLines` hands it to its callback (valid only during the call):
 * each part is read when asked for, so a row whose 4-tuple decides it is not wanted costs one
 * string and no row object.
 */
export interface TcpLine {
  /**
   * Both endpoints as the kernel prints them, `0100007F:1F90 0100007F:C350`: compared with
   * `kernelEndpoints()` of a socket, no address is decoded. Undefined on a malformed line.
   */
  endpoints(): string | undefined;
  /** The socket's inode (0: no descriptor holds it); -1 on a malformed line. */
  inode(): number;
  /** The whole row, checked field by field; undefined on a malformed line. */
  row(): KernelSocketRow | undefined;
}

const currentLine: TcpLine = {
  endpoints() {
    const end = fieldEnd[2]!;
    // Both fields and the one space between them, as the kernel's "%08X:%04X %08X:%04X" has it.
    const kernelShaped =
      fieldStart[2] === fieldEnd[1]! + 1 &&
      lineBytes[fieldEnd[1]! - 5] === COLON &&
      lineBytes[end - 5] === COLON;
    return kernelShaped ? lineBytes.toString('latin1', fieldStart[1]!, end) : undefined;
  },
  inode() {
    if (!findFields(FIELDS)) return -1;
    return decimalAt(lineBytes, fieldStart[9]!, fieldEnd[9]!);
  },
  row() {
    if (!findFields(FIELDS)) return undefined;
    const bytes = lineBytes;
    const local = endpointAt(1);
    const remote = endpointAt(2);
    if (local === undefined || remote === undefined) return undefined;
    const queues = bytes.indexOf(COLON, fieldStart[4]!);
    if (queues === -1 || queues >= fieldEnd[4]!) return undefined;
    const sendQueue = hexAt(bytes, fieldStart[4]!, queues);
    const receiveQueue = hexAt(bytes, queues + 1, fieldEnd[4]!);
    const uid = decimalAt(bytes, fieldStart[7]!, fieldEnd[7]!);
    const inode = decimalAt(bytes, fieldStart[9]!, fieldEnd[9]!);
    if (sendQueue < 0 || receiveQueue < 0 || uid < 0 || inode < 0) return undefined;
    const code = String.fromCharCode(bytes[fieldStart[3]!]!, bytes[fieldStart[3]! + 1]!);
    const state = code.toUpperCase();
    return {
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
    };
  },
};

/**
 * Whether the line on bytes[start, end) is in state `wantState`: the state column is found and
 * compared before anything else of the line is looked at. The header fails here too.
 */
function startLine(bytes: Buffer, start: number, end: number, wantState: number): boolean {
  lineBytes = bytes;
  lineEnd = end;
  fieldsFound = 0;
  fieldStart[0] = start;
  if (!findFields(4)) return false;
  if (fieldEnd[3]! - fieldStart[3]! !== 2) return false;
  const state = hexAt(bytes, fieldStart[3]!, fieldEnd[3]!);
  return state >= 0 && (wantState === ANY_STATE || state === wantState);
}

/**
 * Hands each complete line of bytes[0, end) in state `wantState` to `onLine`, and returns where
 * the unfinished last one starts (`end` when the bytes end with a newline): the caller keeps
 * that part for the next read. Malformed lines are skipped (their parts read as undefined or
 * -1), never thrown on.
 */
export function parseLines(
  bytes: Buffer,
  end: number,
  wantState: number,
  onLine: (line: TcpLine) => void,
): number {
  let start = 0;
  for (;;) {
    const newline = bytes.indexOf(NEWLINE, start);
    if (newline === -1 || newline >= end) return start;
    if (startLine(bytes, start, newline, wantState)) onLine(currentLine);
    start = newline + 1;
  }
}

/**
 * Rows of one whole /proc/net/tcp{,6} text. `wantState` (hex code) keeps only rows in that
 * state. For the live tables, `readRows` reads and parses in slices instead.
 */
export function parseProcNetTcp(text: string, wantState?: string): KernelSocketRow[] {
  const rows: KernelSocketRow[] = [];
  const bytes = Buffer.from(text.endsWith('\n') ? text : `${text}\n`, 'latin1');
  parseLines(bytes, bytes.length, stateCode(wantState), (line) => {
    const row = line.row();
    if (row !== undefined) rows.push(row);
  });
  return rows;
}
