import { Inject } from '@nestjs/common';

/**
 * One dependency the app needs to serve traffic. `check` resolves true (or nothing) when it is
 * usable and false or throws when it is not; it is bounded by the health module's timeout.
 */
export interface ReadinessCheck {
  name: string;
  check: () => Promise<boolean | void> | boolean | void;
}

/** What the app tells HealthModule: what "ready" means for it. */
export interface HealthModuleOptions {
  /** The app's readiness checks (e.g. a database ping and the broker's status). */
  checks: ReadinessCheck[];
}

/** @internal Injection token of the HealthModuleOptions. */
export const HEALTH_OPTIONS = Symbol('HEALTH_OPTIONS');

/** @internal Injects the HealthModuleOptions: `@InjectHealthOptions() config: HealthModuleOptions`. */
export const InjectHealthOptions = () => Inject(HEALTH_OPTIONS);
