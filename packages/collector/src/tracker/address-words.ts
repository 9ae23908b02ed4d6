// A socket's two addresses as eight signed 32-bit words: the kernel's 16-byte (IPv6 or
// IPv4-mapped) addresses, local then remote, read little-endian. Kept in plain number fields they
// cost no allocation per socket (signed, loopback and private IPv4 words stay small integers for
// V8), and they go into the wire's 16-byte fields without ever being formatted as text.

import { parseIpInto } from '@ebpf-net/protocol';

export interface AddressWords {
  l0: number;
  l1: number;
  l2: number;
  l3: number;
  r0: number;
  r1: number;
  r2: number;
  r3: number;
}

const bytes = new Uint8Array(32);
const view = new DataView(bytes.buffer);
/** The 16-byte views the encoder copies from, filled by wordsToBytes. */
export const localBytes = bytes.subarray(0, 16);
export const remoteBytes = bytes.subarray(16, 32);

export function copyWords(from: Readonly<AddressWords>, to: AddressWords): void {
  to.l0 = from.l0;
  to.l1 = from.l1;
  to.l2 = from.l2;
  to.l3 = from.l3;
  to.r0 = from.r0;
  to.r1 = from.r1;
  to.r2 = from.r2;
  to.r3 = from.r3;
}

/** Fills localBytes and remoteBytes; they are valid until the next call. */
export function wordsToBytes(from: Readonly<AddressWords>): void {
  view.setInt32(0, from.l0, true);
  view.setInt32(4, from.l1, true);
  view.setInt32(8, from.l2, true);
  view.setInt32(12, from.l3, true);
  view.setInt32(16, from.r0, true);
  view.setInt32(20, from.r1, true);
  view.setInt32(24, from.r2, true);
  view.setInt32(28, from.r3, true);
}

/** Sets `to` from two addresses as text; throws RangeError when one is not an address. */
export function wordsFromText(localAddr: string, remoteAddr: string, to: AddressWords): void {
  if (!parseIpInto(localAddr, bytes, 0) || !parseIpInto(remoteAddr, bytes, 16)) {
    throw new RangeError(`not a pair of IP addresses: ${JSON.stringify(localAddr)} ${JSON.stringify(remoteAddr)}`);
  }
  to.l0 = view.getInt32(0, true);
  to.l1 = view.getInt32(4, true);
  to.l2 = view.getInt32(8, true);
  to.l3 = view.getInt32(12, true);
  to.r0 = view.getInt32(16, true);
  to.r1 = view.getInt32(20, true);
  to.r2 = view.getInt32(24, true);
  to.r3 = view.getInt32(28, true);
}
