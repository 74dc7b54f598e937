import { Logger } from '@nestjs/common';
import { Client, type ClientConfig } from 'pg';

/**
 * @internal A dedicated connection that LISTENs on one channel and reconnects with backoff when the
 * database restarts. Notifications sent while it was down are lost, so `onReconnect` lets
 * the owner catch up (the outbox relay polls, SSE re-reads the task).
 */
export class PgNotificationListener {
  private readonly logger = new Logger(PgNotificationListener.name);
  private client: Client | null = null;
  private closed = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private backoffMs = 200;

  constructor(
    private readonly config: ClientConfig,
    private readonly channel: string,
    private readonly onNotify: (payload: string) => void,
    private readonly onReconnect: () => void = () => undefined,
  ) {}

  async start(): Promise<void> {
    await this.connect();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    const client = new Client(this.config);
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client, new Error('connection ended')));
    client.on('notification', (msg) => {
      if (msg.channel === this.channel) this.onNotify(msg.payload ?? '');
    });
    try {
      await client.connect();
      await client.query(`LISTEN "${this.channel.replace(/"/g, '""')}"`);
      if (this.closed) {
        await client.end();
        return;
      }
      this.client = client;
      this.backoffMs = 200;
    } catch (err) {
      await client.end().catch(() => undefined);
      this.lost(client, err as Error);
    }
  }

  private lost(client: Client, err: Error): void {
    if (this.closed || (this.client !== null && this.client !== client) || this.retryTimer) return;
    this.client = null;
    this.logger.warn(`LISTEN ${this.channel} lost (${err.message}); reconnecting in ${this.backoffMs} ms`);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.connect().then(() => {
        if (this.client) this.onReconnect();
      });
    }, this.backoffMs);
    this.backoffMs = Math.min(this.backoffMs * 2, 5000);
  }
}
