import { ApiProperty } from '@nestjs/swagger';
import type { FailingEndpoint, RotatedSecret, WebhookDeliveryView } from '@tasksys/tasks';

export class WebhookSecretView {
  @ApiProperty({
    description: 'The new signing secret, `whsec_` + base64: shown once. Verify deliveries with it (Standard Webhooks)',
    example: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  })
  secret!: string;
  @ApiProperty({
    format: 'date-time',
    type: String,
    nullable: true,
    description: 'Until then deliveries are signed under the previous secret too; null when there was none',
  })
  previousExpiresAt!: string | null;
}

export class WebhookAttemptItemView {
  @ApiProperty() attempt!: number;
  @ApiProperty({ format: 'date-time' }) at!: string;
  @ApiProperty() durationMs!: number;
  @ApiProperty({ type: Number, nullable: true, description: 'The receiver’s answer; null when none came' })
  statusCode!: number | null;
  @ApiProperty({ type: String, nullable: true, description: 'e.g. `HTTP 500`, `timeout after 10000 ms`' })
  error!: string | null;
}

export class WebhookDeliveryItemView {
  @ApiProperty({ format: 'uuid', description: 'The `webhook-id` header of every attempt' }) id!: string;
  @ApiProperty({ format: 'uuid' }) taskId!: string;
  @ApiProperty() url!: string;
  @ApiProperty({ example: 'task.succeeded' }) eventType!: string;
  @ApiProperty({ enum: ['pending', 'succeeded', 'failed'] }) status!: string;
  @ApiProperty({ type: [WebhookAttemptItemView] }) attempts!: WebhookAttemptItemView[];
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time', type: String, nullable: true }) nextAttemptAt!: string | null;
  @ApiProperty({ format: 'date-time', type: String, nullable: true }) finishedAt!: string | null;
}

export class WebhookDeliveryListView {
  @ApiProperty({ type: [WebhookDeliveryItemView] }) items!: WebhookDeliveryItemView[];
}

export class FailingEndpointView {
  @ApiProperty() owner!: string;
  @ApiProperty() url!: string;
  @ApiProperty({ description: 'Deliveries whose last attempt failed (pending + failed)' }) failingDeliveries!: number;
  @ApiProperty({ description: 'Still being retried' }) pending!: number;
  @ApiProperty({ description: 'Given up after the retry period' }) failed!: number;
  @ApiProperty({ format: 'date-time' }) lastAttemptAt!: string;
  @ApiProperty({ type: String, nullable: true }) lastError!: string | null;
  @ApiProperty({ type: Number, nullable: true }) lastStatusCode!: number | null;
}

export class FailingEndpointListView {
  @ApiProperty({ type: [FailingEndpointView] }) items!: FailingEndpointView[];
}

const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);

export function toSecretView(r: RotatedSecret): WebhookSecretView {
  return { secret: r.secret, previousExpiresAt: iso(r.previousExpiresAt) };
}

export function toDeliveryView(d: WebhookDeliveryView): WebhookDeliveryItemView {
  return {
    ...d,
    attempts: d.attempts.map((a) => ({ ...a, at: a.at.toISOString() })),
    createdAt: new Date(d.createdAt).toISOString(),
    nextAttemptAt: iso(d.nextAttemptAt),
    finishedAt: iso(d.finishedAt),
  };
}

export function toFailingEndpointView(e: FailingEndpoint): FailingEndpointView {
  return { ...e, lastAttemptAt: new Date(e.lastAttemptAt).toISOString() };
}
