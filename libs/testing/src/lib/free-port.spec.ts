import { createServer } from 'node:net';
import { freePort, isPortFree } from './free-port';

describe('freePort', () => {
  it('answers a port a server can listen on, which is then taken', async () => {
    const port = await freePort();
    expect(await isPortFree(port)).toBe(true);
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    try {
      expect(await isPortFree(port)).toBe(false);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
