import { AppProcess, type AppName } from './app-process';
import { freePort } from './free-port';

export interface ProcessFleetOptions {
  app: AppName;
  /** Process n is named `<names><n>` (`test-3f9a-w1`), which names its log file. */
  names: string;
  /** Every process's environment; `start` adds to it. */
  env?: Record<string, string>;
  logDir?: string;
  /** The script node runs, as in AppProcessOptions: the app's built bundle by default. */
  main?: string;
}

/** Processes of one app, each on a free port, started one by one and stopped all together. */
export class ProcessFleet {
  readonly processes: AppProcess[] = [];
  private started = 0;

  constructor(private readonly options: ProcessFleetOptions) {}

  /** One more process with `env` on top of the fleet's, ready when this resolves. */
  async start(env: Record<string, string> = {}, readyTimeoutMs?: number): Promise<AppProcess> {
    // Named before the await, so processes started side by side are numbered in call order.
    const name = `${this.options.names}${++this.started}`;
    const member = new AppProcess({
      name,
      app: this.options.app,
      port: await freePort(),
      env: { ...this.options.env, ...env },
      logDir: this.options.logDir,
      main: this.options.main,
    });
    this.processes.push(member);
    return member.start(readyTimeoutMs);
  }

  alive(): AppProcess[] {
    return this.processes.filter((member) => member.alive);
  }

  /** Stops every process still running, as `AppProcess.stop(graceMs)` does: with 0, SIGKILL. */
  async stopAll(graceMs = 0): Promise<void> {
    await Promise.all(this.alive().map((member) => member.stop(graceMs)));
  }
}
