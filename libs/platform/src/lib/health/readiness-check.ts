/**
 * One dependency the app needs to serve traffic. `check` resolves true (or nothing) when it is
 * usable and false or throws when it is not; it is bounded by the health module's timeout.
 */
export interface ReadinessCheck {
  name: string;
  check: () => Promise<boolean | void> | boolean | void;
}

/** Injection token of the app's `ReadinessCheck[]`. */
export const READINESS_CHECKS = Symbol('READINESS_CHECKS');
