import { Agent, createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.ts';
import { AddressSet, specialAddressReason } from '../../src/lib/ip-ranges.ts';
import { headStatus } from '../../src/modules/publishing/publish-health.service.ts';
import { OutboundPolicy, OutboundRefused, type ResolvedAddress } from '../../src/net/outbound.ts';

describe(specialAddressReason.name, () => {
  it.each([
    ['127.0.0.1', /loopback/],
    ['127.8.9.10', /loopback/],
    ['10.1.2.3', /private/],
    ['172.16.0.1', /private/],
    ['172.31.255.255', /private/],
    ['192.168.1.1', /private/],
    ['169.254.169.254', /link-local.*metadata/],
    ['100.100.100.200', /shared address space/],
    ['0.0.0.0', /unspecified/],
    ['224.0.0.1', /multicast/],
    ['255.255.255.255', /reserved/],
    ['::1', /loopback/],
    ['::', /unspecified/],
    ['fe80::1', /link-local/],
    ['febf::1', /link-local/],
    ['fd00:ec2::254', /unique local/],
    ['fc12::1', /unique local/],
    ['ff02::1', /multicast/],
    // IPv6 forms that reach IPv4 hosts are judged by the IPv4 address.
    ['::ffff:127.0.0.1', /loopback/],
    ['::ffff:7f00:1', /loopback/],
    ['::ffff:a9fe:a9fe', /link-local/],
    ['::127.0.0.1', /loopback/],
    ['64:ff9b::10.0.0.1', /private/],
  ])('refuses %s', (address, reason) => {
    expect(specialAddressReason(address)).toMatch(reason);
  });

  it.each(['93.184.216.34', '8.8.8.8', '172.32.0.1', '100.128.0.1', '169.255.0.1', '2606:4700::1111', '::ffff:8.8.8.8', '64:ff9b::8.8.8.8'])('lets the public address %s through', (address) => {
    expect(specialAddressReason(address)).toBeNull();
  });
});

describe(AddressSet.name, () => {
  it('parses the admin allow list, and refuses what is not an address or subnet', () => {
    const set = AddressSet.parse('10.0.0.0/8, 192.168.1.5,fd00::/8')!;
    expect(set.match('10.20.30.40')).not.toBeNull();
    expect(set.match('192.168.1.5')).not.toBeNull();
    expect(set.match('192.168.1.6')).toBeNull();
    expect(set.match('fd00::1')).not.toBeNull();
    expect(AddressSet.parse('')).not.toBeNull();
    for (const bad of ['10.0.0.0/33', 'example.com', '10.0.0.0/8/1', '::1/129']) expect(AddressSet.parse(bad)).toBeNull();
    expect(() => loadConfig({ STORMVAULT_OUTBOUND_ALLOW: 'intranet' })).toThrow(/STORMVAULT_OUTBOUND_ALLOW/);
    expect(loadConfig({ STORMVAULT_OUTBOUND_ALLOW_PRIVATE: 'true' }).outbound.allowPrivate).toBe(true);
    expect(loadConfig({}).outbound).toEqual({ allowPrivate: false, allowed: [] });
  });
});

describe(OutboundPolicy.name, () => {
  // 127.0.0.2 stands in for a public host: the policies below allow exactly it (STORMVAULT_OUTBOUND_ALLOW).
  let server: Server;
  let port: number;
  const seen: Array<{ url: string; local: string }> = [];
  let dns: Record<string, string[] | (() => string[])> = {};
  let lookups: string[] = [];
  const resolve = async (host: string): Promise<ResolvedAddress[]> => {
    lookups.push(host);
    const entry = dns[host];
    if (!entry) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    return (typeof entry === 'function' ? entry() : entry).map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  const strict = () => new OutboundPolicy({ allowPrivate: false, allowed: AddressSet.parse('127.0.0.2')!, resolve });

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res) => {
      seen.push({ url: req.url ?? '', local: req.socket.localAddress ?? '' });
      if (req.url === '/redirect-inside') {
        res.writeHead(302, { location: `http://127.0.0.1:${port}/secret` });
        return res.end();
      }
      res.end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => {
    server?.close();
  });

  it('refuses private, loopback, link-local and metadata targets when a URL is saved, after resolving it', async () => {
    dns = {
      'internal.example.test': ['10.1.2.3'],
      'metadata.example.test': ['169.254.169.254'],
      'mixed.example.test': ['93.184.216.34', '192.168.0.10'], // one private answer refuses the name
      localhost: ['127.0.0.1', '::1'],
      'public.example.test': ['93.184.216.34'],
    };
    const policy = strict();
    for (const url of [
      'http://127.0.0.1/',
      'http://localhost:8080/',
      'http://2130706433/', // 127.0.0.1 as one number
      'http://0x7f.1/',
      'http://[::1]/',
      'http://[::ffff:127.0.0.1]/',
      'http://169.254.169.254/latest/meta-data/',
      'http://[fd00:ec2::254]/',
      'http://[fe80::1]/',
      'https://10.0.0.5/hook',
      'http://internal.example.test/hook',
      'http://metadata.example.test/',
      'http://mixed.example.test/',
      'http://nowhere.example.test/', // does not resolve
      'ftp://public.example.test/',
    ]) {
      await expect(policy.check(url), url).rejects.toBeInstanceOf(OutboundRefused);
    }
    await expect(policy.check('http://internal.example.test/')).rejects.toThrow(/internal\.example\.test resolves to 10\.1\.2\.3 is a private.*STORMVAULT_OUTBOUND_ALLOW_PRIVATE/);
    await expect(policy.check('https://public.example.test/hook')).resolves.toBeInstanceOf(URL);
  });

  it('checks again at connect time and connects to exactly the address it checked (DNS rebinding)', async () => {
    let answer = '127.0.0.2';
    dns = { 'rebind.example.test': () => [answer] };
    const policy = strict();
    await policy.check(`http://rebind.example.test:${port}/`);
    seen.length = 0;
    lookups = [];
    const ok = await policy.request(`http://rebind.example.test:${port}/first`, { method: 'POST', body: '{}', timeoutMs: 5000 });
    expect(ok.status).toBe(200);
    // One lookup for the request, and the socket went to the address that lookup checked.
    expect(lookups).toEqual(['rebind.example.test']);
    expect(seen).toEqual([{ url: '/first', local: '127.0.0.2' }]);

    answer = '127.0.0.1'; // the name now points inside
    await expect(policy.request(`http://rebind.example.test:${port}/second`, { method: 'POST', body: '{}', timeoutMs: 5000 })).rejects.toThrow(/rebind\.example\.test resolves to 127\.0\.0\.1 is a loopback/);
    await expect(policy.request(`http://127.0.0.1:${port}/literal`, { method: 'GET', timeoutMs: 5000 })).rejects.toBeInstanceOf(OutboundRefused);
    expect(seen.map((s) => s.url)).toEqual(['/first']);
  });

  it('holds sockets of clients that make their own requests (the S3 SDK) to the policy: connectLookup', async () => {
    let answer = '127.0.0.2';
    dns = { 'bucket.example.test': () => [answer] };
    const agent = new Agent({ keepAlive: false, lookup: strict().connectLookup() });
    const get = (p: string) =>
      new Promise<number>((resolve, reject) => {
        const req = httpRequest(`http://bucket.example.test:${port}${p}`, { agent }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
    seen.length = 0;
    expect(await get('/object')).toBe(200);
    expect(seen).toEqual([{ url: '/object', local: '127.0.0.2' }]);
    answer = '169.254.169.254';
    await expect(get('/latest/meta-data/')).rejects.toThrow(/bucket\.example\.test resolves to 169\.254\.169\.254 is a link-local/);
    expect(seen.map((s) => s.url)).toEqual(['/object']);
    agent.destroy();
  });

  it('the CDN probe follows redirects only to allowed addresses', async () => {
    seen.length = 0;
    await expect(headStatus(strict(), `http://127.0.0.2:${port}/redirect-inside`)).rejects.toBeInstanceOf(OutboundRefused);
    expect(seen.map((s) => s.url)).toEqual(['/redirect-inside']);
    expect(await headStatus(strict(), `http://127.0.0.2:${port}/plain`)).toBe(200);
  });

  it('an admin who allows private targets can reach them', async () => {
    const open = new OutboundPolicy({ allowPrivate: true, resolve });
    dns = { localhost: ['127.0.0.1'] };
    await expect(open.check(`http://localhost:${port}/`)).resolves.toBeInstanceOf(URL);
    expect((await open.request(`http://127.0.0.1:${port}/inside`, { method: 'GET', timeoutMs: 5000 })).status).toBe(200);
  });
});
