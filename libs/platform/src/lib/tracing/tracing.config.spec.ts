import { ConfigurationError } from '../errors/configuration.error';
import { planTracing } from './tracing.config';

describe('planTracing (the OTEL_* variables decided on before anything loads)', () => {
  const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' };
  const problem = (variables: Record<string, string>) => {
    try {
      planTracing(variables);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigurationError);
      return (err as ConfigurationError).problems.join('\n');
    }
    throw new Error('no configuration error');
  };

  it('is off without an endpoint, whatever else is set', () => {
    expect(planTracing({})).toEqual({ enabled: false });
    expect(planTracing({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_SERVICE_NAME: 'x' })).toEqual({
      enabled: false,
    });
    expect(planTracing({ OTEL_EXPORTER_OTLP_ENDPOINT: '' })).toEqual({ enabled: false }); // empty means unset
  });

  it('is on with either endpoint, exporting http/protobuf (the specification default) unless told otherwise', () => {
    expect(planTracing(endpoint)).toEqual({ enabled: true, protocol: 'http/protobuf' });
    expect(planTracing({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://collector:4318/v1/traces' })).toEqual({
      enabled: true,
      protocol: 'http/protobuf',
    });
    expect(planTracing({ ...endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' })).toEqual({
      enabled: true,
      protocol: 'http/json',
    });
  });

  it('takes the traces protocol over the generic one', () => {
    expect(
      planTracing({
        ...endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf',
      }),
    ).toEqual({ enabled: true, protocol: 'http/protobuf' });
  });

  it('honours OTEL_SDK_DISABLED=true (any case) and OTEL_TRACES_EXPORTER=none', () => {
    expect(planTracing({ ...endpoint, OTEL_SDK_DISABLED: 'true' })).toEqual({ enabled: false });
    expect(planTracing({ ...endpoint, OTEL_SDK_DISABLED: 'TRUE' })).toEqual({ enabled: false });
    expect(planTracing({ ...endpoint, OTEL_SDK_DISABLED: 'false' })).toEqual({
      enabled: true,
      protocol: 'http/protobuf',
    });
    expect(planTracing({ ...endpoint, OTEL_TRACES_EXPORTER: 'none' })).toEqual({ enabled: false });
  });

  it.each([
    [
      { ...endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' },
      /^OTEL_EXPORTER_OTLP_PROTOCOL \("grpc"\): .*grpc is not supported/,
    ],
    [
      { ...endpoint, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/xml' },
      /^OTEL_EXPORTER_OTLP_TRACES_PROTOCOL \("http\/xml"\)/,
    ],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' },
      /^OTEL_EXPORTER_OTLP_ENDPOINT \("collector:4318"\): must be a URL/,
    ],
    [{ ...endpoint, OTEL_TRACES_EXPORTER: 'zipkin' }, /^OTEL_TRACES_EXPORTER \("zipkin"\): must be otlp or none/],
    [{ ...endpoint, OTEL_SDK_DISABLED: 'maybe' }, /^OTEL_SDK_DISABLED \("maybe"\): must be true or false/],
  ])('refuses %p, naming the variable', (variables, message) => {
    expect(problem(variables)).toMatch(message);
  });
});
