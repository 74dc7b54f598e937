import { ConfigurableModuleBuilder, Module } from '@nestjs/common';
import { WebhookDeliveries } from './webhook-deliveries.query';
import { WebhookDispatcher } from './webhook-dispatcher.service';
import { WebhookSecrets } from './webhook-secrets.service';
import { WEBHOOKS_OPTIONS, type WebhooksModuleOptions } from './webhooks.constants';

const definition = new ConfigurableModuleBuilder<WebhooksModuleOptions>({ optionsInjectionToken: WEBHOOKS_OPTIONS })
  .setClassMethodName('forRoot')
  .build();

/** `WebhooksModule.forRootAsync(...)`: the webhooks' config, the body renderer, whether to dispatch here. */
export type WebhooksModuleAsyncOptions = typeof definition.ASYNC_OPTIONS_TYPE;

/**
 * Completion webhooks: signing secrets, the dispatcher (docs/ARCHITECTURE.md, "Completion webhooks")
 * and the reads of deliveries. Needs TasksModule (global). Callback urls are checked at submit with
 * `checkCallbackUrl`.
 */
@Module({
  providers: [WebhookSecrets, WebhookDispatcher, WebhookDeliveries],
  exports: [WebhookSecrets, WebhookDispatcher, WebhookDeliveries, WEBHOOKS_OPTIONS],
})
export class WebhooksModule extends definition.ConfigurableModuleClass {}
