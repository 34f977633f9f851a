import { lookup as dnsLookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { AddressSet, specialAddressReason } from '../lib/ip-ranges.ts';

// Requests the server makes to URLs its users gave it (org webhooks, CDN health probes, a publishing
// site's own S3 endpoint) are a way into the server's own network (SSRF): http://169.254.169.254/ is a
// cloud's credentials service, http://127.0.0.1:6379/ the local Redis. So by default such a request may
// only reach public addresses, checked after DNS resolution — when the URL is saved (a clear 400 at once)
// and again on every request, at connect time, on the very address the socket connects to (the resolved
// address is pinned for the request: a name that re-resolves to 127.0.0.1 between the check and the
// connect — DNS rebinding — cannot slip through). An admin allows private targets with
// STORMVAULT_OUTBOUND_ALLOW_PRIVATE=true, or only some with STORMVAULT_OUTBOUND_ALLOW (docs/security.md).

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to every address it has (dns.lookup with all: true by default). */
export type ResolveHost = (hostname: string) => Promise<ResolvedAddress[]>;

export interface OutboundPolicyOptions {
  /** Any address allowed (private networks, loopback): the admin's STORMVAULT_OUTBOUND_ALLOW_PRIVATE. */
  allowPrivate: boolean;
  /** Addresses and subnets allowed although special (STORMVAULT_OUTBOUND_ALLOW), e.g. an internal receiver. */
  allowed?: AddressSet;
  /** Tests hand in their own resolver. */
  resolve?: ResolveHost;
}

/** An outbound URL refused by the policy; `reason` is safe to show to whoever configured the URL. */
export class OutboundRefused extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'OutboundRefused';
  }
}

const systemResolve: ResolveHost = async (hostname) => (await dnsLookup(hostname, { all: true, verbatim: true })).map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));

const HINT = 'an admin can allow private targets with STORMVAULT_OUTBOUND_ALLOW_PRIVATE=true or STORMVAULT_OUTBOUND_ALLOW=<address or subnet>';

export interface OutboundResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
}

/** Which addresses outbound requests may reach, and the one way to make such a request. */
export class OutboundPolicy {
  private readonly resolveHost: ResolveHost;

  constructor(private readonly options: OutboundPolicyOptions) {
    this.resolveHost = options.resolve ?? systemResolve;
  }

  /** Why `address` is refused, or null. */
  refusal(address: string): string | null {
    if (this.options.allowPrivate) return null;
    if (this.options.allowed?.match(address)) return null;
    const special = specialAddressReason(address);
    return special ? `${address} is ${special === 'not an IP address' ? special : `a ${special} address`}` : null;
  }

  /**
   * Checks a URL as it is saved: http(s), no credentials, and every address its host resolves to allowed
   * (one refused answer refuses the URL: a name with a public and a private address is a rebinding setup).
   * @throws OutboundRefused with a reason for the user.
   */
  async check(raw: string): Promise<URL> {
    const url = parseUrl(raw);
    await this.addressesOf(url.hostname);
    return url;
  }

  /**
   * One request to `raw`, connecting only to an address the policy allows: the lookup at connect time is
   * ours, checks what it resolved and hands the socket exactly those addresses (pinned). The body of the
   * answer is discarded (callers need the status). Redirects are not followed.
   */
  async request(raw: string, init: { method: 'POST' | 'HEAD' | 'GET'; headers?: Record<string, string>; body?: string; signal?: AbortSignal; timeoutMs: number }): Promise<OutboundResponse> {
    const url = parseUrl(raw);
    const host = bare(url.hostname);
    // An IP literal never goes through lookup: check it here.
    if (isIP(host)) {
      const why = this.refusal(host);
      if (why) throw new OutboundRefused(`${why}; ${HINT}`);
    }
    const lookup = this.connectLookup();
    const client = url.protocol === 'https:' ? https : http;
    return new Promise<OutboundResponse>((resolve, reject) => {
      const req = client.request(
        url,
        {
          method: init.method,
          headers: { ...init.headers, ...(init.body !== undefined ? { 'content-length': String(Buffer.byteLength(init.body)) } : {}) },
          lookup,
          // A fresh connection per request: a pooled socket would skip the lookup (and its check).
          agent: false,
          timeout: init.timeoutMs,
          // The whole request, not only an idle socket, ends at the deadline.
          signal: init.signal ? AbortSignal.any([init.signal, AbortSignal.timeout(init.timeoutMs)]) : AbortSignal.timeout(init.timeoutMs),
        },
        (res) => {
          res.resume();
          res.on('error', () => {});
          resolve({ status: res.statusCode ?? 0, headers: res.headers });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${init.timeoutMs} ms`)));
      req.on('error', (err) => reject(unwrap(err)));
      req.end(init.body);
    });
  }

  /**
   * A `lookup` for sockets (http.Agent, net.connect) that resolves through the policy: what a name
   * resolves to at connect time is checked and exactly those addresses are handed to the socket, so a
   * client that makes its own requests (the S3 SDK of the publishing mirror) is under the policy too.
   * Node calls no lookup for an IP literal: check those with check() before connecting.
   */
  connectLookup(): LookupFunction {
    return (hostname, opts, callback) => {
      this.addressesOf(hostname).then(
        (addresses) => {
          const wanted = opts.family === 4 || opts.family === 6 ? addresses.filter((a) => a.family === opts.family) : addresses;
          if (wanted.length === 0) return callback(Object.assign(new Error(`${hostname} has no IPv${opts.family} address`), { code: 'ENOTFOUND' }), '', 4);
          if (opts.all) return (callback as unknown as (e: null, a: ResolvedAddress[]) => void)(null, wanted);
          callback(null, wanted[0]!.address, wanted[0]!.family);
        },
        (err: Error) => callback(err as NodeJS.ErrnoException, '', 4),
      );
    };
  }

  private async addressesOf(hostname: string): Promise<ResolvedAddress[]> {
    const host = bare(hostname);
    const family = isIP(host);
    let addresses: ResolvedAddress[];
    if (family !== 0) addresses = [{ address: host, family: family as 4 | 6 }];
    else {
      try {
        addresses = await this.resolveHost(host);
      } catch (err) {
        throw new OutboundRefused(`cannot resolve ${host}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      if (addresses.length === 0) throw new OutboundRefused(`cannot resolve ${host}: no address`);
    }
    for (const a of addresses) {
      const why = this.refusal(a.address);
      if (why) throw new OutboundRefused(`${family === 0 ? `${host} resolves to ${why}` : why}; ${HINT}`);
    }
    return addresses;
  }
}

function parseUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new OutboundRefused('not an absolute http:// or https:// URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new OutboundRefused('not an absolute http:// or https:// URL');
  if (url.username || url.password) throw new OutboundRefused('a URL must not carry credentials');
  return url;
}

/** `[::1]` → `::1` (URL keeps IPv6 hosts in brackets). */
const bare = (hostname: string) => (hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname);

/** The lookup's refusal arrives wrapped by net; hand it back as itself. */
function unwrap(err: Error): Error {
  if (err instanceof OutboundRefused) return err;
  const cause = (err as { cause?: unknown }).cause;
  return cause instanceof OutboundRefused ? cause : err;
}
