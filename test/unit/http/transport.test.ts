// The HTTP layer against small servers on 127.0.0.1: a 503 is retried and then succeeds, a
// server that stops sending trips the idle timeout, a redirect to another origin loses the
// Authorization header (a URL's user:password too), and a registry that keeps failing ends in
// one clear line. A response timeout bounds the wait for an answer across redirects, and a
// redirect loop ends after maxRedirects. A body that trickles fails the minimum rate, and a
// deadline bounds a whole exchange, body included.
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { Transport } from '../../../src/http/transport.js';

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

  /** A server that sends its answer's body a byte every `everyMs`, never finishing. */
  const trickling = (everyMs: number) =>
    serve((_req, res) => {
      res.writeHead(200, { 'Content-Length': '100000' });
      const timer = setInterval(() => res.write('x'), everyMs);
      res.on('close', () => clearInterval(timer));
    });

  test('a body that trickles is never idle, but fails the minimum rate within about a window', async () => {
    const s = await trickling(50);
    const t = new Transport({ idleTimeoutMs: 400, minBytesPerSecond: 1000, backoffMs: 10 });
    try {
      const started = Date.now();
      const res = await t.send({ method: 'GET', url: new URL('/blob', s.url) });
      await expect(res.text()).rejects.toThrow(/^\d+ bytes in 0\.4s, below the minimum rate of 1000 bytes\/s$/);
      expect(Date.now() - started).toBeLessThan(1500);
    } finally {
      t.close();
      await s.close();
    }
  });

  test('minBytesPerSecond 0 turns the rate check off; a deadline still bounds the exchange, body included', async () => {
    const s = await trickling(50);
    const t = new Transport({ idleTimeoutMs: 400, minBytesPerSecond: 0, deadlineMs: 700 });
    try {
      const started = Date.now();
      const res = await t.send({ method: 'GET', url: new URL('/blob', s.url) });
      await expect(res.text()).rejects.toThrow('not finished within 0.7s (deadline)');
      expect(Date.now() - started).toBeGreaterThanOrEqual(650);
      // A request's own deadline wins over the transport's (Infinity: none; the idle timeout then).
      const own = await t.send({ method: 'GET', url: new URL('/blob', s.url), deadlineMs: 300 });
      await expect(own.text()).rejects.toThrow('not finished within 0.3s (deadline)');
    } finally {
      t.close();
      await s.close();
    }
  });

  test('a small answer sent at once is not failed by the minimum rate, however long the server thought', async () => {
    const s = await serve((_req, res) => {
      setTimeout(() => {
        res.writeHead(200, { 'Content-Length': '2' });
        res.end('ok');
      }, 250);
    });
    const t = new Transport({ idleTimeoutMs: 400, minBytesPerSecond: 100_000 });
    try {
      const res = await t.send({ method: 'GET', url: new URL('/v2/', s.url) });
      expect(await res.text()).toBe('ok');
      await new Promise((r) => setTimeout(r, 600)); // no check fires on a finished exchange
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

  test("a URL's user:password is sent as Basic authorization, but not to another origin", async () => {
    const seen: (string | undefined)[] = [];
    const mirror = await serve((req, res) => {
      seen.push(req.headers.authorization);
      res.end('elsewhere');
    });
    const origin = await serve((req, res) => {
      seen.push(req.headers.authorization);
      if (req.url === '/file') res.writeHead(302, { Location: '/moved' }).end();
      else if (req.url === '/moved') res.writeHead(302, { Location: `${mirror.url}/file` }).end();
    });
    const t = new Transport();
    try {
      const url = new URL('/file', origin.url);
      url.username = 'me';
      url.password = 'p@ss';
      const res = await t.send({ method: 'GET', url });
      expect(await res.text()).toBe('elsewhere');
      const basic = `Basic ${Buffer.from('me:p@ss').toString('base64')}`;
      expect(seen).toEqual([basic, basic, undefined]);
    } finally {
      t.close();
      await origin.close();
      await mirror.close();
    }
  });

  test('responseTimeoutMs bounds the wait for an answer, redirects included; the idle timeout then watches the body', async () => {
    const s = await serve((req, res) => {
      const later = (f: () => void): void => void setTimeout(f, 400);
      if (req.url === '/slow') later(() => res.end('slow'));
      else if (req.url === '/via') later(() => res.writeHead(302, { Location: '/slow' }).end());
      else if (req.url === '/stall') later(() => res.writeHead(200, { 'Content-Length': '100' }).write('partial'));
    });
    const t = new Transport({ responseTimeoutMs: 700, idleTimeoutMs: 300, retries: 0 });
    try {
      // Each answer alone comes in time, and after the idle timeout's 300 ms.
      expect(await (await t.send({ method: 'GET', url: new URL('/slow', s.url) })).text()).toBe('slow');
      const via = new URL('/via', s.url);
      await expect(t.send({ method: 'GET', url: via })).rejects.toThrow(`Get "${via.href}": no response within 0.7s (response timeout)`);
      const stalled = await t.send({ method: 'GET', url: new URL('/stall', s.url) });
      await expect(stalled.text()).rejects.toThrow('no data for 0.3s (idle timeout)');
    } finally {
      t.close();
      await s.close();
    }
  });

  test('a redirect loop ends after maxRedirects', async () => {
    let calls = 0;
    const s = await serve((_req, res) => {
      calls++;
      res.writeHead(302, { Location: '/again' }).end();
    });
    const t = new Transport({ maxRedirects: 2 });
    try {
      const url = new URL('/loop', s.url);
      await expect(t.send({ method: 'GET', url })).rejects.toThrow(`Get "${url.href}": too many redirects`);
      expect(calls).toBe(3);
    } finally {
      t.close();
      await s.close();
    }
  });

  test('an answer without a reason phrase gets the standard one', async () => {
    const server = net.createServer((socket) => {
      socket.once('data', () => socket.end('HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n'));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const t = new Transport();
    try {
      const res = await t.send({ method: 'GET', url: new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/x`) });
      await res.discard();
      expect(`${res.status} ${res.statusText}`).toBe('404 Not Found');
    } finally {
      t.close();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
