/** The api's error body: `{statusCode, error, message, code}`; `message` names the field at fault. */
export interface ApiErrorBody {
  statusCode?: number;
  error?: string;
  message?: string;
  code?: string;
}

/** An answer of the api that is not a success, with its status, stable code and message. */
export class ApiError extends Error {
  override readonly name = 'ApiError';

  constructor(
    readonly status: number,
    /** The api's stable code (`TASK.NOT_FOUND`, `AUTH.UNAUTHORIZED`), `HTTP.<status>` when it sent none. */
    readonly code: string,
    message: string,
    readonly body?: unknown,
  ) {
    super(message);
  }

  /** From a response and its parsed body (anything: a proxy's HTML page gives the status line). */
  static from(response: Response, body: unknown): ApiError {
    const b = (body !== null && typeof body === 'object' ? body : {}) as ApiErrorBody;
    const message =
      typeof b.message === 'string' && b.message !== ''
        ? b.message
        : `${response.status} ${response.statusText || 'error'}`.trim();
    return new ApiError(
      response.status,
      typeof b.code === 'string' ? b.code : `HTTP.${response.status}`,
      message,
      body,
    );
  }
}

/** waitFor gave up before the task reached a terminal status. */
export class WaitTimeoutError extends Error {
  override readonly name = 'WaitTimeoutError';

  constructor(
    readonly taskId: string,
    readonly timeoutMs: number,
  ) {
    super(`task ${taskId} did not finish within ${timeoutMs} ms`);
  }
}
