import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { CallbackUrlRefused, parseCallbackUrl, resolveCallbackTarget } from './callback-url.policy';

/** What one attempt got: a status code (any, 2xx is success), or an error before or instead of one. */
export interface AttemptOutcome {
  ok: boolean;
  statusCode: number | null;
  /** `timeout`, `refused: ...`, `connection: ECONNREFUSED`, `redirect 302 not followed`, `HTTP 500`. */
  error: string | null;
  durationMs: number;
  /** For metrics: success, http_error, redirect, timeout, connection_error, refused. */
  kind: 'success' | 'http_error' | 'redirect' | 'timeout' | 'connection_error' | 'refused';
}

/** How much of a receiver's answer is read: enough to free the socket, never a whole download. */
const MAX_RESPONSE_BYTES = 64 * 1024;

/**
 * @internal One POST of a webhook. The host is resolved and checked here, and the connection goes to
 * that checked address (a `lookup` that answers with it), so a name cannot resolve to a public address
 * for the check and a private one for the connect. The url's host stays the Host header and the TLS
 * server name. Redirects are never followed (a 3xx is a failed attempt). `timeoutMs` bounds the whole
 * attempt, connect to the last byte read.
 */
export async function sendWebhook(
  rawUrl: string,
  headers: Record<string, string>,
  body: string,
  opts: { timeoutMs: number; allowPrivate: boolean; signal?: AbortSignal },
): Promise<AttemptOutcome> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  let url: URL;
  let target: { address: string; family: 4 | 6 };
  try {
    url = parseCallbackUrl(rawUrl);
    target = await resolveCallbackTarget(url, opts.allowPrivate);
  } catch (err) {
    const reason = err instanceof CallbackUrlRefused ? err.message : String(err);
    return { ok: false, statusCode: null, error: `refused: ${reason}`, durationMs: elapsed(), kind: 'refused' };
  }
  const pinned: LookupFunction = (_hostname, options, callback) => {
    if ((options as { all?: boolean }).all)
      (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [target]);
    else callback(null, target.address, target.family);
  };
  const client = url.protocol === 'https:' ? https : http;
  return new Promise<AttemptOutcome>((resolve) => {
    let settled = false;
    const finish = (outcome: Omit<AttemptOutcome, 'durationMs'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      req.destroy();
      resolve({ ...outcome, durationMs: elapsed() });
    };
    const req = client.request(
      url,
      {
        method: 'POST',
        lookup: pinned,
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        // A fresh connection per attempt: a pooled socket would skip the address check of this attempt.
        agent: false,
      },
      (res) => {
        const status = res.statusCode ?? 0;
        let read = 0;
        res.on('data', (chunk: Buffer) => {
          read += chunk.length;
          if (read > MAX_RESPONSE_BYTES) done();
        });
        const done = () => {
          if (status >= 200 && status < 300) finish({ ok: true, statusCode: status, error: null, kind: 'success' });
          else if (status >= 300 && status < 400)
            finish({ ok: false, statusCode: status, error: `redirect ${status} not followed`, kind: 'redirect' });
          else finish({ ok: false, statusCode: status, error: `HTTP ${status}`, kind: 'http_error' });
        };
        res.on('end', done);
        res.on('error', done);
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) =>
      finish({
        ok: false,
        statusCode: null,
        error: `connection: ${err.code ?? err.message}`,
        kind: 'connection_error',
      }),
    );
    const timer = setTimeout(
      () => finish({ ok: false, statusCode: null, error: `timeout after ${opts.timeoutMs} ms`, kind: 'timeout' }),
      opts.timeoutMs,
    );
    const onAbort = () =>
      finish({ ok: false, statusCode: null, error: 'aborted: the api shut down', kind: 'connection_error' });
    opts.signal?.addEventListener('abort', onAbort);
    req.end(body);
  });
}
