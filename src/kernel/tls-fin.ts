/**
 * Whose FIN a TLS socket's end is. Node's TLS layer ends the stream on the peer's close_notify
 * (TLSWrap emits EOF for SSL_ERROR_ZERO_RETURN), which travels as data in front of the TCP FIN.
 * A paused reader whose buffer filled just after that record stops reading the TCP socket: if
 * the FIN had not been read yet, the kernel holds it for good while Node's state says "FIN read,
 * never consumed". Measured on Node 22-26 with the FIN sent once the reader has stopped, behind
 * 80 KB and close_notify: Node ended, the kernel's receive queue 1 (the FIN alone), in every run;
 * with no delay the FIN comes in the same read and both agree. Which kind such a leak is, only
 * the kernel can say, and only once the FIN has reached it: until the socket is in CLOSE_WAIT
 * there is nothing to decide (reconcile.ts waits for that row).
 */
import type { Socket } from 'node:net';
import type { KernelSocketRow } from './proc-net-tcp.js';

/** A TLS socket: its stream can end before the TCP FIN under it is read. */
export function endsOnCloseNotify(socket: Socket): boolean {
  return (socket as Socket & { encrypted?: boolean }).encrypted === true;
}

/** The kernel still holds the peer's FIN: in CLOSE_WAIT it counts as one byte of the queue. */
export function kernelHoldsFin(row: KernelSocketRow): boolean {
  return row.receiveQueue > 0;
}
