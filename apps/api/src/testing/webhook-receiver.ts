import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { freePort } from '@tasksys/testing';

export interface ReceivedWebhook {
  path: string;
  headers: Record<string, string>;
  body: string;
  at: number;
}

/** How the receiver answers the nth request (from 1) to a path: a status, or `hang` (never answers). */
export type Answer = number | 'hang' | { status: number; headers: Record<string, string> };

/** A real HTTP receiver on 127.0.0.1 that records every request and answers as each path's script says. */
export class WebhookReceiver {
  readonly received: ReceivedWebhook[] = [];
  private readonly scripts = new Map<string, (n: number) => Answer>();
  private readonly hanging = new Set<ServerResponse>();
  private server!: Server;
  port = 0;

  static async start(): Promise<WebhookReceiver> {
    const receiver = new WebhookReceiver();
    receiver.port = await freePort();
    receiver.server = createServer((req, res) => receiver.handle(req, res));
    await new Promise<void>((resolve) => receiver.server.listen(receiver.port, '127.0.0.1', resolve));
    return receiver;
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** Answers of `path`; 200 by default. */
  script(path: string, answer: (n: number) => Answer): void {
    this.scripts.set(path, answer);
  }

  at(path: string): ReceivedWebhook[] {
    return this.received.filter((r) => r.path === path);
  }

  async close(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
      this.received.push({ path, headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() });
      const answer = (this.scripts.get(path) ?? (() => 200))(this.at(path).length);
      if (answer === 'hang') {
        this.hanging.add(res);
        return;
      }
      const { status, headers: extra } = typeof answer === 'number' ? { status: answer, headers: {} } : answer;
      res.writeHead(status, extra).end('ok');
    });
  }
}
