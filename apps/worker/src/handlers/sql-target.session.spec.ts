import { BackendMessageMeter, targetClientConfig } from './sql-target.session';

/** A backend message: type byte, int32 length (itself included), body. */
function message(type: string, bodyBytes: number): Buffer {
  const out = Buffer.alloc(5 + bodyBytes, 0x61);
  out.write(type, 0, 'latin1');
  out.writeUInt32BE(4 + bodyBytes, 1);
  return out;
}

/** Feeds `bytes` to a meter in chunks of `size`; the first overflow, if any. */
function feed(meter: BackendMessageMeter, bytes: Buffer, size: number) {
  for (let at = 0; at < bytes.length; at += size) {
    const overflow = meter.admit(bytes.subarray(at, at + size));
    if (overflow) return { overflow, at };
  }
  return { overflow: null, at: bytes.length };
}

describe('BackendMessageMeter', () => {
  const stream = Buffer.concat([
    message('T', 30),
    message('D', 95),
    message('D', 95),
    message('C', 10),
    message('Z', 1),
  ]);

  it.each([1, 2, 3, 5, 7, 64, stream.length])('counts rows the same whatever the chunking (%i-byte chunks)', (size) => {
    const meter = new BackendMessageMeter(1000);
    expect(feed(meter, stream, size).overflow).toBeNull();
    expect(meter.received).toEqual({ rows: 2, bytes: 200 });
  });

  it('stops a message bigger than the cap at its header, before the body arrives', () => {
    const meter = new BackendMessageMeter(1000);
    const header = Buffer.from([0x44, 0, 0, 0, 0]);
    header.writeUInt32BE(200_000_000 - 1, 1); // a 200 MB row: only its 5 header bytes are needed
    expect(meter.admit(header.subarray(0, 3))).toBeNull();
    expect(meter.admit(header.subarray(3))).toEqual({ bytes: 200_000_000, rows: 0, single: true });
  });

  it('stops a huge error message too (any type)', () => {
    const meter = new BackendMessageMeter(1000);
    expect(meter.admit(message('E', 5000))).toMatchObject({ single: true, bytes: 5005 });
  });

  it('stops when the rows together pass the cap, counting only DataRows', () => {
    const meter = new BackendMessageMeter(250);
    const rows = Buffer.concat([message('T', 200), message('D', 95), message('D', 95), message('D', 95)]);
    expect(feed(meter, rows, 16).overflow).toEqual({ bytes: 300, rows: 2, single: false });
  });

  it('counts from zero again after resetRows', () => {
    const meter = new BackendMessageMeter(150);
    expect(meter.admit(message('D', 95))).toBeNull();
    meter.resetRows();
    expect(meter.admit(message('D', 95))).toBeNull();
    expect(meter.received).toEqual({ rows: 1, bytes: 100 });
  });
});

describe('targetClientConfig', () => {
  const limits = { statementTimeoutMs: 1500, maxResultBytes: 1 << 20, tempFileLimitKb: 1024 };

  it('sends the limits as -c settings at connect, with connect, query and keep-alive timeouts', () => {
    expect(targetClientConfig('postgres://reader@db:5432/app', 'tasksys:t1', limits)).toEqual({
      connectionString: 'postgres://reader@db:5432/app',
      application_name: 'tasksys:t1',
      options:
        '-c default_transaction_read_only=on -c statement_timeout=1500 -c idle_in_transaction_session_timeout=10000 -c temp_file_limit=1024',
      connectionTimeoutMillis: 10_000,
      query_timeout: 2500,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    });
  });

  it('leaves temp_file_limit out when the role may not set it', () => {
    expect(
      targetClientConfig('postgres://reader@db/app', 'x', { ...limits, tempFileLimitKb: null }).options,
    ).not.toMatch(/temp_file_limit/);
  });

  it("puts the URL's options first (the last setting wins) and drops URL parameters that would override the worker's", () => {
    const url =
      'postgres://reader@db/app?sslmode=require&options=-c%20search_path%3Dreporting%20-c%20default_transaction_read_only%3Doff&statement_timeout=0&application_name=me';
    const config = targetClientConfig(url, 'tasksys:t1', limits);
    expect(config.options).toBe(
      '-c search_path=reporting -c default_transaction_read_only=off -c default_transaction_read_only=on -c statement_timeout=1500 ' +
        '-c idle_in_transaction_session_timeout=10000 -c temp_file_limit=1024',
    );
    expect(new URL(config.connectionString ?? '').searchParams.toString()).toBe('sslmode=require');
    expect(config.application_name).toBe('tasksys:t1');
  });
});
