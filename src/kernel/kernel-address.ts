/**
 * A socket's 4-tuple as /proc/net/tcp{,6} prints it, from Node's address text: the kernel's own
 * form is what a row is matched on, so the hundreds of thousands of rows of a busy table are
 * compared as they are read and none of their addresses is decoded.
 * The kernel prints each 32-bit word of an address as it lies in memory, read little-endian:
 * 127.0.0.1 is 0100007F. A socket Node reports as `::ffff:a.b.c.d` is an IPv6 socket and is in
 * tcp6 as a mapped address; one reported as `a.b.c.d` is in tcp.
 */

const HEX = '0123456789ABCDEF';

/** The kernel's hex of 4n octets: per word of four, the last octet first. */
function wordsHex(octets: readonly number[]): string {
  let text = '';
  for (let word = 0; word < octets.length; word += 4) {
    for (let byte = 3; byte >= 0; byte--) {
      const octet = octets[word + byte]!;
      text += HEX[octet >> 4]! + HEX[octet & 15]!;
    }
  }
  return text;
}

function ipv4Octets(text: string): number[] | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const octets = parts.map((part) => (/^\d{1,3}$/.test(part) ? Number(part) : 256));
  return octets.every((octet) => octet <= 255) ? octets : undefined;
}

/** Groups of one side of `::` as 16-bit words; a dotted IPv4 may end the address. */
function groupWords(part: string, last: boolean): number[] | undefined {
  if (part === '') return [];
  const words: number[] = [];
  const groups = part.split(':');
  for (let i = 0; i < groups.length; i++) {
    const group = groups[i]!;
    if (last && i === groups.length - 1 && group.includes('.')) {
      const octets = ipv4Octets(group);
      if (octets === undefined) return undefined;
      words.push((octets[0]! << 8) | octets[1]!, (octets[2]! << 8) | octets[3]!);
    } else if (/^[0-9A-Fa-f]{1,4}$/.test(group)) {
      words.push(Number.parseInt(group, 16));
    } else return undefined;
  }
  return words;
}

function ipv6Octets(text: string): number[] | undefined {
  // A link-local address carries its zone (`fe80::1%eth0`); the kernel's row does not.
  const zone = text.indexOf('%');
  const address = zone === -1 ? text : text.slice(0, zone);
  const halves = address.split('::');
  if (halves.length > 2) return undefined;
  const head = groupWords(halves[0]!, halves.length === 1);
  const tail = halves.length === 2 ? groupWords(halves[1]!, true) : [];
  if (head === undefined || tail === undefined) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const words = [...head, ...new Array<number>(missing).fill(0), ...tail];
  return words.flatMap((word) => [word >> 8, word & 0xff]);
}

function addressHex(address: string): string | undefined {
  const octets = address.includes(':') ? ipv6Octets(address) : ipv4Octets(address);
  return octets === undefined ? undefined : wordsHex(octets);
}

function portHex(port: number): string | undefined {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) return undefined;
  return port.toString(16).toUpperCase().padStart(4, '0');
}

/**
 * `0100007F:1F90 0100007F:C350`: the local and remote endpoints as a row of /proc/net/tcp{,6}
 * shows them (`TcpLine.endpoints()`), or undefined when Node's text is no address.
 */
export function kernelEndpoints(
  localAddress: string,
  localPort: number,
  remoteAddress: string,
  remotePort: number,
): string | undefined {
  const local = addressHex(localAddress);
  const remote = addressHex(remoteAddress);
  const lport = portHex(localPort);
  const rport = portHex(remotePort);
  if (local === undefined || remote === undefined || lport === undefined || rport === undefined) {
    return undefined;
  }
  // Both ends are of one family: an IPv4 peer of an IPv6 socket is shown mapped.
  if (local.length !== remote.length) return undefined;
  return `${local}:${lport} ${remote}:${rport}`;
}
