import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown, Optional } from '@nestjs/common';
import { Webhook } from 'standardwebhooks';
import { DataSource } from 'typeorm';
import { MetricsService } from '@tasksys/platform';
import { pgConnectionConfig } from '../data-source.options';
import type { DatabaseConfig } from '../database.config';
import { PgNotificationListener } from '../pg-notification.listener';
import { preparedQuery } from '../prepared-query';
import { TaskStateMachine } from '../task-state-machine';
import { InjectDatabaseConfig } from '../tasks.constants';
import { WebhookSecrets } from './webhook-secrets.service';
import { type AttemptOutcome, sendWebhook } from './webhook-sender';
import { WebhookMetrics } from './webhook.metrics';
import { InjectWebhooksOptions, type WebhooksModuleOptions } from './webhooks.constants';

/** A claimed delivery: `attempts` (already counting this one) is the fencing token of its outcome. */
interface ClaimedDelivery {
  id: string;
  owner: string;
  url: string;
  task: Record<string, unknown>;
  attempts: number;
}

/** Past the attempt's own timeout, time to record its outcome before another dispatcher may take it over. */
const LEASE_MARGIN_MS = 5_000;
/** The longest wait between attempts, whatever the attempt number. */
const MAX_RETRY_DELAY_MS = 3_600_000;
const CLAIM_BATCH = 50;

/** @internal Claims up to $1 due deliveries, leased for $2 ms (prepared: prepared-plans.int-spec.ts checks its plan). */
export const WEBHOOK_CLAIM_SQL = `WITH due AS (
           SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= now()
            ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
         UPDATE webhook_deliveries d SET attempts = d.attempts + 1, next_attempt_at = now() + $2 * interval '1 millisecond'
           FROM due WHERE d.id = due.id
         RETURNING d.id, d.owner, d.url, d.task, d.attempts`;

/**
 * @internal Records attempt $2 of delivery $1 ($3 ms, status $4, error $5, $6 ok) and its next try
 * in $7 ms, failed for good past $8 ms since it was made. Planned on every call (not prepared).
 */
export const WEBHOOK_RECORD_SQL = `WITH att AS (
         INSERT INTO webhook_attempts (delivery_id, attempt, duration_ms, status_code, error) VALUES ($1, $2, $3, $4, $5)),
       upd AS (
         UPDATE webhook_deliveries d
            SET last_attempt_at = now(), last_status_code = $4, last_error = $5,
                status = CASE WHEN $6 THEN 'succeeded'
                              WHEN now() >= d.created_at + $8 * interval '1 millisecond' THEN 'failed' ELSE 'pending' END,
                finished_at = CASE WHEN $6 OR now() >= d.created_at + $8 * interval '1 millisecond' THEN now() END,
                next_attempt_at = least(now() + $7 * interval '1 millisecond', d.created_at + $8 * interval '1 millisecond')
          WHERE d.id = $1 AND d.attempts = $2 AND d.status = 'pending'
         RETURNING d.status)
       SELECT (SELECT status FROM upd) AS status`;

/** @internal Delay before attempt `attempt + 1`: exponential from `baseMs`, capped, with equal jitter (half fixed, half random). */
export function retryDelayMs(attempt: number, baseMs: number, random = Math.random): number {
  const exp = Math.min(MAX_RETRY_DELAY_MS, baseMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(exp / 2 + (random() * exp) / 2);
}

/**
 * Sends completion webhooks from `webhook_deliveries` (written by the terminal transitions) in every
 * api process. A round claims due rows with SKIP LOCKED, pushing their `next_attempt_at` past the
 * attempt's timeout (a lease: a killed api's attempt falls due again), and sends each with at most
 * WEBHOOK_CONCURRENCY in flight. Each attempt is recorded in `webhook_attempts`; the delivery then
 * succeeds (2xx), falls due again after a backoff, or fails for good once WEBHOOK_RETRY_PERIOD_MS
 * has passed since the task ended. Woken by NOTIFY on insert, and polls (retries fall due silently).
 * Receivers never hold a worker or a transition: they only ever hold one of this loop's slots.
 */
@Injectable()
export class WebhookDispatcher implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(WebhookDispatcher.name);
  private readonly inFlight = new Set<Promise<void>>();
  private readonly stopping = new AbortController();
  private readonly metrics: WebhookMetrics;
  private listener: PgNotificationListener | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private round: Promise<void> | null = null;
  private again = false;

  constructor(
    private readonly db: DataSource,
    private readonly sm: TaskStateMachine,
    private readonly secrets: WebhookSecrets,
    @InjectWebhooksOptions() private readonly options: WebhooksModuleOptions,
    @InjectDatabaseConfig() private readonly dbConfig: DatabaseConfig,
    @Optional() metrics?: MetricsService,
  ) {
    this.metrics = new WebhookMetrics(metrics ?? new MetricsService());
  }

  async onApplicationBootstrap(): Promise<void> {
    if (this.options.dispatch === false) return;
    this.listener = new PgNotificationListener(
      pgConnectionConfig(this.dbConfig),
      `${this.dbConfig.DATABASE_SCHEMA}.webhooks`,
      () => this.wake(),
      () => this.wake(),
    );
    await this.listener.start();
    this.pollTimer = setInterval(() => this.wake(), this.options.config.WEBHOOK_POLL_MS);
    this.pollTimer.unref();
    this.wake();
  }

  /** Stops claiming and aborts attempts in flight: their leases run out and another api sends them again (same webhook-id). */
  async onApplicationShutdown(): Promise<void> {
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.stopping.abort();
    await this.listener?.close();
    await this.round?.catch(() => undefined);
    await Promise.allSettled([...this.inFlight]);
  }

  /** Runs a claim round now, or once more after the running one. */
  wake(): void {
    if (this.stopping.signal.aborted) return;
    if (this.round) {
      this.again = true;
      return;
    }
    this.round = this.claimRound()
      .catch((err: unknown) => this.logger.warn(`webhook claim failed: ${(err as Error).message}`))
      .finally(() => {
        this.round = null;
        if (this.again) {
          this.again = false;
          this.wake();
        }
      });
  }

  private async claimRound(): Promise<void> {
    const { WEBHOOK_CONCURRENCY, WEBHOOK_TIMEOUT_MS } = this.options.config;
    for (;;) {
      const free = WEBHOOK_CONCURRENCY - this.inFlight.size;
      if (free <= 0 || this.stopping.signal.aborted) return;
      const claimed = await preparedQuery<ClaimedDelivery>(this.db, WEBHOOK_CLAIM_SQL, [
        Math.min(free, CLAIM_BATCH),
        WEBHOOK_TIMEOUT_MS + LEASE_MARGIN_MS,
      ]);
      for (const delivery of claimed) {
        const run: Promise<void> = this.attempt(delivery)
          .catch((err: unknown) =>
            this.logger.warn(
              `webhook ${delivery.id} attempt ${delivery.attempts} not recorded: ${(err as Error).message}`,
            ),
          )
          .finally(() => {
            this.inFlight.delete(run);
            this.wake(); // a slot is free
          });
        this.inFlight.add(run);
      }
      if (claimed.length < Math.min(free, CLAIM_BATCH)) return;
    }
  }

  private async attempt(delivery: ClaimedDelivery): Promise<void> {
    const { config } = this.options;
    let body: string;
    try {
      body = JSON.stringify(this.options.render(this.sm.hydrate(delivery.task)));
    } catch (err) {
      // Recorded like any failed attempt, so the delivery still ends (failed) after the retry period.
      body = '';
      this.logger.error(`webhook ${delivery.id}: the body could not be rendered: ${(err as Error).message}`);
    }
    const secrets = body ? await this.secrets.signingSecrets(delivery.owner) : [];
    let outcome: AttemptOutcome;
    if (!body) {
      outcome = { ok: false, statusCode: null, error: 'internal: body not rendered', durationMs: 0, kind: 'refused' };
    } else if (secrets.length === 0) {
      outcome = {
        ok: false,
        statusCode: null,
        error: `refused: owner ${delivery.owner} has no webhook secret (POST /v1/webhooks/secret)`,
        durationMs: 0,
        kind: 'refused',
      };
    } else {
      const sentAt = new Date();
      const signature = secrets.map((s) => new Webhook(s).sign(delivery.id, sentAt, body)).join(' ');
      outcome = await sendWebhook(
        delivery.url,
        {
          'content-type': 'application/json',
          'user-agent': 'tasksys-webhooks/1',
          'webhook-id': delivery.id,
          'webhook-timestamp': String(Math.floor(sentAt.getTime() / 1000)),
          'webhook-signature': signature,
        },
        body,
        {
          timeoutMs: config.WEBHOOK_TIMEOUT_MS,
          allowPrivate: config.WEBHOOK_ALLOW_PRIVATE,
          signal: this.stopping.signal,
        },
      );
    }
    if (this.stopping.signal.aborted && !outcome.ok) return; // not the receiver's failure: the lease hands it on
    this.metrics.attempted(outcome);
    const delay = retryDelayMs(delivery.attempts, config.WEBHOOK_RETRY_BASE_MS);
    // Planned per call: a generic plan made on an empty table walked the `due` index to find one id.
    const [row] = await this.db.query<{ status: string | null }[]>(WEBHOOK_RECORD_SQL, [
      delivery.id,
      delivery.attempts,
      outcome.durationMs,
      outcome.statusCode,
      outcome.error,
      outcome.ok,
      delay,
      config.WEBHOOK_RETRY_PERIOD_MS,
    ]);
    if (row?.status === 'succeeded' || row?.status === 'failed') this.metrics.finished(row.status);
    if (row?.status === 'failed')
      this.logger.warn(`webhook ${delivery.id} to ${delivery.url} failed for good after ${delivery.attempts} attempts`);
  }
}
