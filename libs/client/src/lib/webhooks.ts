import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import type { Task } from './types';

/** Request headers as Node (`req.headers`), fetch (`Headers`) or a plain record gives them. */
export type WebhookHeaders = Headers | Record<string, string | string[] | undefined>;

export { WebhookVerificationError };

/**
 * Checks a webhook delivery from tasksys (Standard Webhooks: `webhook-id`, `webhook-timestamp`,
 * `webhook-signature`, an HMAC-SHA256 over id, timestamp and the raw body, timestamps within five
 * minutes) and returns the task it carries. Throws WebhookVerificationError when the signature,
 * the timestamp or a header is wrong. Pass the body exactly as received (before any JSON parsing).
 * `secret`: the owner's signing secret, `whsec_...`, from POST /v1/webhooks/secret.
 */
export function verifyWebhook(secret: string, headers: WebhookHeaders, body: string | Uint8Array): Task {
  const wanted = ['webhook-id', 'webhook-timestamp', 'webhook-signature'];
  const flat: Record<string, string> = {};
  for (const name of wanted) {
    const value = headers instanceof Headers ? headers.get(name) : (headers[name] ?? headers[name.toLowerCase()]);
    if (typeof value === 'string') flat[name] = value;
    else if (Array.isArray(value) && value.length > 0) flat[name] = value.join(' ');
  }
  const text = typeof body === 'string' ? body : new TextDecoder().decode(body);
  return new Webhook(secret).verify(text, flat) as Task;
}
