// IP addresses on the wire are 16 bytes: IPv6, with IPv4 as IPv4-mapped (::ffff:a.b.c.d).
// In JavaScript they are strings in canonical form: dotted quad for IPv4, RFC 5952 for IPv6.

/** "0" to "255": IPv4 addresses are formatted on hot paths (every socket event). */
const DECIMAL = Array.from({ length: 256 }, (_, i) => String(i));

/** Formats the 16 bytes at `offset` as a canonical address string. */
export function formatIp(bytes: Uint8Array, offset: number): string {
  let mapped = bytes[offset + 10] === 0xff && bytes[offset + 11] === 0xff;
  for (let i = 0; mapped && i < 10; i++) mapped = bytes[offset + i] === 0;
  if (mapped) {
    return `${DECIMAL[bytes[offset + 12]!]}.${DECIMAL[bytes[offset + 13]!]}.${DECIMAL[bytes[offset + 14]!]}.${DECIMAL[bytes[offset + 15]!]}`;
  }
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[offset + i]! << 8) | bytes[offset + i + 1]!);
  // RFC 5952: compress the longest run (the first, on a tie) of two or more zero groups.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number) => groups.slice(from, to).map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLen, 8)}`;
}

/** Writes `address` (IPv4 or IPv6 text) as 16 bytes at `offset`; returns false when it is not an address. */
export function parseIpInto(address: string, out: Uint8Array, offset: number): boolean {
  const v4 = parseIpv4(address);
  if (v4 !== undefined) {
    out.fill(0, offset, offset + 10);
    out[offset + 10] = 0xff;
    out[offset + 11] = 0xff;
    out[offset + 12] = v4 >>> 24;
    out[offset + 13] = (v4 >>> 16) & 0xff;
    out[offset + 14] = (v4 >>> 8) & 0xff;
    out[offset + 15] = v4 & 0xff;
    return true;
  }
  const groups = parseIpv6(address);
  if (groups === undefined) return false;
  for (let i = 0; i < 8; i++) {
    out[offset + 2 * i] = groups[i]! >>> 8;
    out[offset + 2 * i + 1] = groups[i]! & 0xff;
  }
  return true;
}

/** Parses an address into a new 16-byte array; throws RangeError when it is not one. */
export function parseIp(address: string): Uint8Array {
  const out = new Uint8Array(16);
  if (!parseIpInto(address, out, 0)) throw new RangeError(`not an IP address: ${JSON.stringify(address)}`);
  return out;
}

/** Dotted quad to a u32; no leading zeros, each part at most 255. Hand-rolled: it is on the encode path. */
function parseIpv4(text: string): number | undefined {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46; // a final '.' closes the last part
    if (c >= 48 && c <= 57) {
      if (digits === 1 && part === 0) return undefined; // leading zero
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return undefined;
    } else if (c === 46) {
      if (digits === 0 || ++dots > 4) return undefined;
      value = value * 256 + part;
      part = 0;
      digits = 0;
    } else {
      return undefined;
    }
  }
  return dots === 4 ? value : undefined;
}

function parseIpv6(text: string): number[] | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parseSide = (side: string, allowV4Tail: boolean): number[] | undefined => {
    if (side === '') return [];
    const out: number[] = [];
    const parts = side.split(':');
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      if (allowV4Tail && i === parts.length - 1 && part.includes('.')) {
        const v4 = parseIpv4(part);
        if (v4 === undefined) return undefined;
        out.push(v4 >>> 16, v4 & 0xffff);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(part)) {
        out.push(parseInt(part, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const head = parseSide(halves[0]!, halves.length === 1);
  const tail = halves.length === 2 ? parseSide(halves[1]!, true) : [];
  if (head === undefined || tail === undefined) return undefined;
  if (halves.length === 1) return head.length === 8 ? head : undefined;
  const missing = 8 - head.length - tail.length;
  if (missing < 1) return undefined;
  return [...head, ...new Array<number>(missing).fill(0), ...tail];
}
