// A plain GET of a JSON document over node:http or node:https (taken as process builtins: see
// src/proxy/sidecar.ts on builtins), bounded in time and size: the sidecar fetches JWKS with it,
// the control plane OpenID discovery documents.

/** A document larger than this is not what was asked for (a JWKS or discovery document is a few KB). */
export const MAX_JSON_BYTES = 1024 * 1024;

/** GETs `uri` and parses the body as JSON; rejects on a non-200 answer, a timeout, too many bytes, or bad JSON. */
export function getJson(uri: string, timeoutMs: number): Promise<unknown> {
  const mod = uri.startsWith('https:') ? process.getBuiltinModule('node:https') : process.getBuiltinModule('node:http');
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (err: Error | undefined, v?: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(v);
    };
    let req: ReturnType<typeof mod.get>;
    try {
      req = mod.get(uri, { headers: { accept: 'application/json' } }, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          settle(new Error(`${uri} answered ${res.statusCode}`));
          return;
        }
        const chunks: Buffer[] = [];
        let n = 0;
        res.on('data', (c: Buffer) => {
          n += c.length;
          if (n > MAX_JSON_BYTES) req.destroy(new Error(`${uri} sent more than ${MAX_JSON_BYTES} bytes`));
          else chunks.push(c);
        });
        res.on('end', () => {
          try {
            settle(undefined, JSON.parse(Buffer.concat(chunks).toString('utf8')));
          } catch {
            settle(new Error(`${uri} sent no JSON`));
          }
        });
        res.on('error', (e) => settle(e));
      });
    } catch (e) {
      // A URI node:http cannot take (a bad host, a bad port): said, not thrown.
      return reject(new Error(`cannot fetch ${uri}: ${(e as Error).message}`));
    }
    req.on('error', (e) => settle(e));
    const timer = setTimeout(() => {
      settle(new Error(`fetching ${uri} took longer than ${timeoutMs} ms`));
      req.destroy();
    }, timeoutMs);
  });
}
