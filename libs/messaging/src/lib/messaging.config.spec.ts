import { ConfigurationError, validateEnv } from '@tasksys/platform';
import { messagingConfigSchema, rabbitmqUrls } from './messaging.config';

describe('messaging configuration: RABBITMQ_URL and the quorum settings', () => {
  const validate = validateEnv(messagingConfigSchema);

  it('takes one URL, and a cluster as a comma list of nodes in the given order', () => {
    expect(rabbitmqUrls(validate({}).RABBITMQ_URL)).toEqual(['amqp://guest:guest@127.0.0.1:5672']);
    const cluster = validate({
      RABBITMQ_URL: 'amqp://u:p@rmq-0:5672/tasks, amqp://u:p@rmq-1:5672/tasks,amqps://u:p@rmq-2/tasks',
    });
    expect(rabbitmqUrls(cluster.RABBITMQ_URL)).toEqual([
      'amqp://u:p@rmq-0:5672/tasks',
      'amqp://u:p@rmq-1:5672/tasks',
      'amqps://u:p@rmq-2/tasks',
    ]);
  });

  it.each([
    ['http://rmq-0:5672', 'http://rmq-0:5672'],
    ['amqp://rmq-0:5672,nope', 'nope'],
    ['amqp://rmq-0:5672,http://rmq-1', 'http://rmq-1'],
  ])('refuses RABBITMQ_URL=%s naming the variable and the bad item %s', (value, item) => {
    expect(() => validate({ RABBITMQ_URL: value })).toThrow(ConfigurationError);
    expect(() => validate({ RABBITMQ_URL: value })).toThrow(/^Invalid configuration:\n {2}RABBITMQ_URL \(/);
    expect(() => validate({ RABBITMQ_URL: value })).toThrow(`item "${item}" is not an amqp:// or amqps:// URL`);
  });

  it('keeps credentials of a bad item out of the message (it lands in logs)', () => {
    expect(() => validate({ RABBITMQ_URL: 'amqp://rmq-0,http://user:secret@rmq-1' })).toThrow(
      'item "http://***@rmq-1" is not',
    );
  });

  it('refuses an empty item and nodes naming different vhosts', () => {
    expect(() => validate({ RABBITMQ_URL: 'amqp://rmq-0,,amqp://rmq-1' })).toThrow(/RABBITMQ_URL .*has an empty item/);
    expect(() => validate({ RABBITMQ_URL: 'amqp://rmq-0/a,amqp://rmq-1/b' })).toThrow(/RABBITMQ_URL .*same vhost/);
    // `amqp://h` and `amqp://h/` are both the default vhost.
    expect(() => validate({ RABBITMQ_URL: 'amqp://rmq-0,amqp://rmq-1/' })).not.toThrow();
  });

  it('RABBITMQ_QUORUM_REPLICAS is 3 unless set, a whole number from 1', () => {
    expect(validate({}).RABBITMQ_QUORUM_REPLICAS).toBe(3);
    expect(validate({ RABBITMQ_QUORUM_REPLICAS: '5' }).RABBITMQ_QUORUM_REPLICAS).toBe(5);
    for (const bad of ['0', 'three', '2.5'])
      expect(() => validate({ RABBITMQ_QUORUM_REPLICAS: bad })).toThrow(
        /^Invalid configuration:\n {2}RABBITMQ_QUORUM_REPLICAS \(/,
      );
  });
});
