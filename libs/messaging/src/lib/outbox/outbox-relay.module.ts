import { Module } from '@nestjs/common';
import { OutboxRelayService } from './outbox-relay.service';

/**
 * The outbox relay, for the api only (the worker does not import it). Needs the global
 * `MessagingModule` and an `OUTBOX_STORE` provider in scope (the global TasksModule's PgOutboxStore).
 */
@Module({ providers: [OutboxRelayService], exports: [OutboxRelayService] })
export class OutboxRelayModule {}
