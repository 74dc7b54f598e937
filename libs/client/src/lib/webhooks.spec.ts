import { Webhook } from 'standardwebhooks';
import { verifyWebhook, WebhookVerificationError } from './webhooks';

const SECRET = `whsec_${Buffer.from('a test secret of thirty-two bytes').toString('base64')}`;

function signed(body: string, at = new Date()) {
  const id = 'msg_1';
  return {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(SECRET).sign(id, at, body),
  };
}

describe('verifyWebhook (Standard Webhooks)', () => {
  const body = JSON.stringify({ id: 't1', status: 'succeeded' });

  it('returns the task of a correctly signed delivery, from Node-style, fetch and array headers', () => {
    const headers = signed(body);
    expect(verifyWebhook(SECRET, headers, body)).toEqual({ id: 't1', status: 'succeeded' });
    expect(verifyWebhook(SECRET, new Headers(headers), new TextEncoder().encode(body))).toMatchObject({ id: 't1' });
    // A rotated secret: the api signs with both, space-separated; either verifies.
    const other = new Webhook(`whsec_${Buffer.from('another secret').toString('base64')}`);
    const both = `${other.sign('msg_1', new Date(), body)} ${headers['webhook-signature']}`;
    expect(verifyWebhook(SECRET, { ...headers, 'webhook-signature': [both] }, body)).toMatchObject({ id: 't1' });
  });

  it('throws on a changed body, a wrong secret, a stale timestamp and a missing header', () => {
    const headers = signed(body);
    expect(() => verifyWebhook(SECRET, headers, body.replace('succeeded', 'failed'))).toThrow(WebhookVerificationError);
    expect(() => verifyWebhook(`whsec_${Buffer.from('wrong').toString('base64')}`, headers, body)).toThrow(
      WebhookVerificationError,
    );
    expect(() => verifyWebhook(SECRET, signed(body, new Date(Date.now() - 10 * 60_000)), body)).toThrow(
      WebhookVerificationError,
    );
    const { 'webhook-id': _id, ...missing } = headers;
    expect(() => verifyWebhook(SECRET, missing, body)).toThrow(WebhookVerificationError);
  });
});
