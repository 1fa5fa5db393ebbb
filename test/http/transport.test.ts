// The HTTP layer against small servers on 127.0.0.1: a 503 is retried and then succeeds, a
// server that stops sending trips the idle timeout, a redirect to another origin loses the
// Authorization header, and a registry that keeps failing ends in one clear line.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Transport } from '../../src/http/transport.js';

async function serve(handler: http.RequestListener): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe('transport', () => {
  test('429 and 5xx are retried with backoff, a bounded number of times', async () => {
    let calls = 0;
    const s = await serve((_req, res) => {
      calls++;
      res.writeHead(calls < 3 ? 503 : 200, calls === 1 ? { 'Retry-After': '0' } : {});
      res.end('ok');
    });
    const t = new Transport({ backoffMs: 10 });
    try {
      const res = await t.send({ method: 'GET', url: new URL('/v2/', s.url) });
      expect(res.status).toBe(200);
      expect(calls).toBe(3);
      calls = -100; // always failing now
      const again = await t.send({ method: 'GET', url: new URL('/v2/', s.url) });
      expect(again.status).toBe(503); // the caller sees the last answer
      expect(calls).toBe(-96); // 1 + 3 retries
    } finally {
      t.close();
      await s.close();
    }
  });

  test('a body that stops moving trips the idle timeout', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Length': '100' });
      res.write('partial'); // and never the rest
    });
    const t = new Transport({ idleTimeoutMs: 300 });
    try {
      const res = await t.send({ method: 'GET', url: new URL('/blob', s.url) });
      await expect(res.text()).rejects.toThrow(/idle timeout/);
    } finally {
      t.close();
      await s.close();
    }
  });

  test('a refused connection is one line after the retries', async () => {
    const s = await serve(() => undefined);
    const url = new URL('/v2/', s.url);
    await s.close();
    const t = new Transport({ backoffMs: 5 });
    try {
      await expect(t.send({ method: 'GET', url })).rejects.toThrow(new RegExp(`^Get "${url.href}": connect ECONNREFUSED`));
    } finally {
      t.close();
    }
  });

  test('a redirect to another origin drops Authorization; the same origin keeps it', async () => {
    const seen: (string | undefined)[] = [];
    const storage = await serve((req, res) => {
      seen.push(req.headers.authorization);
      res.end('blob');
    });
    const registry = await serve((req, res) => {
      if (req.url === '/same') {
        seen.push(req.headers.authorization);
        res.end('same');
        return;
      }
      res.writeHead(307, { Location: req.url === '/away' ? `${storage.url}/signed?x=1` : '/same' });
      res.end();
    });
    const t = new Transport();
    try {
      const away = await t.send({ method: 'GET', url: new URL('/away', registry.url), headers: { Authorization: 'Bearer t0ken' } });
      expect(await away.text()).toBe('blob');
      const here = await t.send({ method: 'GET', url: new URL('/here', registry.url), headers: { Authorization: 'Bearer t0ken' } });
      expect(await here.text()).toBe('same');
      expect(seen).toEqual([undefined, 'Bearer t0ken']);
    } finally {
      t.close();
      await storage.close();
      await registry.close();
    }
  });
});
