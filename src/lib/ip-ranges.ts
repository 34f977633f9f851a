import { BlockList, isIP } from 'node:net';

// Address ranges an outbound request of the server (webhooks, CDN probes) must not reach unless an admin
// allows it: they lead into the server's own host or network, or to cloud metadata services
// (169.254.169.254, fd00:ec2::254, 100.100.100.200), which is what SSRF is after. RFC 6890 (special-purpose
// registries), RFC 4291 (IPv6 addressing), RFC 6598 (shared address space), RFC 6052 (NAT64).

const V4: Array<[string, number, string]> = [
  ['0.0.0.0', 8, 'unspecified ("this network")'],
  ['10.0.0.0', 8, 'private (RFC 1918)'],
  ['100.64.0.0', 10, 'shared address space / carrier-grade NAT (RFC 6598; also cloud metadata such as 100.100.100.200)'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local (cloud metadata such as 169.254.169.254)'],
  ['172.16.0.0', 12, 'private (RFC 1918)'],
  ['192.0.0.0', 24, 'IETF protocol assignments'],
  ['192.0.2.0', 24, 'documentation (TEST-NET-1)'],
  ['192.88.99.0', 24, '6to4 relay anycast'],
  ['192.168.0.0', 16, 'private (RFC 1918)'],
  ['198.18.0.0', 15, 'benchmarking'],
  ['198.51.100.0', 24, 'documentation (TEST-NET-2)'],
  ['203.0.113.0', 24, 'documentation (TEST-NET-3)'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved (and broadcast)'],
];

const V6: Array<[string, number, string]> = [
  ['::', 128, 'unspecified'],
  ['::1', 128, 'loopback'],
  ['100::', 64, 'discard-only'],
  ['2001:db8::', 32, 'documentation'],
  ['fc00::', 7, 'unique local (private; also cloud metadata such as fd00:ec2::254)'],
  ['fe80::', 10, 'link-local'],
  ['fec0::', 10, 'site-local (deprecated)'],
  ['ff00::', 8, 'multicast'],
];

/** A set of addresses and subnets, e.g. an admin's allow list. */
export class AddressSet {
  private readonly entries: Array<{ test: BlockList; reason: string }> = [];

  add(address: string, prefix: number | undefined, reason = 'listed'): void {
    const type = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    const test = new BlockList();
    if (prefix === undefined) test.addAddress(address, type);
    else test.addSubnet(address, prefix, type);
    this.entries.push({ test, reason });
  }

  /** Why `address` (no brackets) is in the set, or null. */
  match(address: string): string | null {
    const type = isIP(address) === 6 ? 'ipv6' : isIP(address) === 4 ? 'ipv4' : null;
    if (!type) return null;
    return this.entries.find((e) => e.test.check(address, type))?.reason ?? null;
  }

  /**
   * Parses `10.0.0.0/8, 192.168.1.5, fd00::/8` (what STORMVAULT_OUTBOUND_ALLOW holds).
   * @returns null when an entry is not an address or a subnet.
   */
  static parse(text: string): AddressSet | null {
    const set = new AddressSet();
    for (const raw of text.split(',').map((s) => s.trim()).filter(Boolean)) {
      const [address, bits, ...rest] = raw.split('/');
      if (rest.length > 0 || !address || isIP(address) === 0) return null;
      if (bits !== undefined && (!/^\d{1,3}$/.test(bits) || Number(bits) > (isIP(address) === 4 ? 32 : 128))) return null;
      set.add(address, bits === undefined ? undefined : Number(bits));
    }
    return set;
  }
}

/**
 * The special ranges, built on first use: building them (isIP's first call compiles its large IPv6
 * pattern) would cost every process that loads its config a few ms, and only outbound requests need
 * them (issue 12, CLI start-up).
 */
let special: AddressSet | undefined;
function specialRanges(): AddressSet {
  if (!special) {
    special = new AddressSet();
    for (const [a, p, r] of [...V4, ...V6]) special.add(a, p, r);
  }
  return special;
}

/**
 * The IPv4 address an IPv6 address stands for, when it is one of the forms that reach IPv4 hosts:
 * IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d, deprecated) and NAT64 (64:ff9b::a.b.c.d).
 */
function embeddedV4(address: string): string | null {
  const words = expandV6(address);
  if (!words) return null;
  const zeros = (n: number) => words.slice(0, n).every((w) => w === 0);
  const v4 = () => `${words[6]! >> 8}.${words[6]! & 255}.${words[7]! >> 8}.${words[7]! & 255}`;
  if (zeros(5) && words[5] === 0xffff) return v4();
  if (zeros(6) && (words[6] !== 0 || words[7]! > 1)) return v4();
  if (words[0] === 0x64 && words[1] === 0xff9b && words.slice(2, 6).every((w) => w === 0)) return v4();
  return null;
}

/** Eight 16-bit words of an IPv6 address (with or without an embedded dotted quad), or null. */
function expandV6(address: string): number[] | null {
  let text = address.toLowerCase().split('%')[0]!;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const parts = dotted[1]!.split('.').map(Number);
    text = `${text.slice(0, -dotted[1]!.length)}${((parts[0]! << 8) | parts[1]!).toString(16)}:${((parts[2]! << 8) | parts[3]!).toString(16)}`;
  }
  const [head, tail, ...more] = text.split('::');
  if (more.length > 0) return null;
  const h = head ? head.split(':') : [];
  const t = tail !== undefined ? (tail ? tail.split(':') : []) : [];
  const fill = tail !== undefined ? 8 - h.length - t.length : 0;
  if (fill < 0 || (tail === undefined && h.length !== 8)) return null;
  const words = [...h, ...Array<string>(fill).fill('0'), ...t].map((w) => parseInt(w, 16));
  return words.length === 8 && words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffff) ? words : null;
}

/**
 * Why an outbound request must not go to `address` (an IP literal, IPv6 without brackets), or null when
 * it is an ordinary public address. IPv6 forms that embed an IPv4 address are judged by that address.
 */
export function specialAddressReason(address: string): string | null {
  const family = isIP(address);
  if (family === 0) return 'not an IP address';
  if (family === 6) {
    const v4 = embeddedV4(address);
    if (v4) return specialAddressReason(v4);
  }
  return specialRanges().match(address);
}
