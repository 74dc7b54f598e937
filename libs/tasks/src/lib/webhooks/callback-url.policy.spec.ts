import { CallbackUrlRefused, checkCallbackUrl, isPublicAddress, parseCallbackUrl } from './callback-url.policy';
import { retryDelayMs } from './webhook-dispatcher.service';

describe('callback url policy', () => {
  it.each([
    '127.0.0.1',
    '10.1.2.3',
    '172.16.0.1',
    '192.168.1.1',
    '169.254.169.254',
    '100.100.100.200',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    '::1',
    '::',
    'fe80::1',
    'fd00:ec2::254',
    'ff02::1',
    '::ffff:127.0.0.1',
    '::ffff:10.0.0.1',
    '64:ff9b::a00:1',
    '2002:a00:1::',
    'not an address',
  ])('refuses %s', (address) => expect(isPublicAddress(address)).toBe(false));

  it.each(['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111', '::ffff:8.8.8.8'])('accepts %s', (address) =>
    expect(isPublicAddress(address)).toBe(true),
  );

  it('checks the syntax before anything is resolved', () => {
    expect(() => parseCallbackUrl('file:///etc/passwd')).toThrow(CallbackUrlRefused);
    expect(() => parseCallbackUrl('https://a:b@example.com/')).toThrow(/credentials/);
    expect(() => parseCallbackUrl(`https://example.com/${'x'.repeat(2050)}`)).toThrow(/2048/);
    expect(parseCallbackUrl('https://example.com:8443/hook?x=1').host).toBe('example.com:8443');
  });

  it('refuses a name that resolves to loopback unless private addresses are allowed', async () => {
    await expect(checkCallbackUrl('http://localhost:9/hook', false)).rejects.toThrow(/resolves to/);
    await expect(checkCallbackUrl('http://localhost:9/hook', true)).resolves.toBeUndefined();
  });
});

describe('webhook retry delays', () => {
  it('double from the base with equal jitter, capped at an hour', () => {
    expect(retryDelayMs(1, 1000, () => 0)).toBe(500);
    expect(retryDelayMs(1, 1000, () => 1)).toBe(1000);
    expect(retryDelayMs(4, 1000, () => 1)).toBe(8000);
    expect(retryDelayMs(40, 1000, () => 1)).toBe(3_600_000);
  });
});
