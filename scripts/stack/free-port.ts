import net from 'node:net';

/**
 * Asks the kernel for a free TCP port on 127.0.0.1 by binding port 0 and releasing it again.
 *
 * Only for processes we cannot hand a listening socket to (postgres, redis-server): there is a small
 * window in which someone else may take the port, so callers retry on "address in use". Our own Node
 * servers listen on port 0 directly instead (see {@link listenOnFreePort}).
 */
export function getFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.unref();
    probe.once('error', reject);
    probe.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => (port > 0 ? resolve(port) : reject(new Error('could not read probe port'))));
    });
  });
}

/**
 * Starts `server` listening on 127.0.0.1 at a kernel-chosen port and resolves with that port.
 * No race: the port is ours from the moment it is chosen.
 */
export function listenOnFreePort(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      server.off('error', reject);
      const address = server.address();
      if (typeof address === 'object' && address !== null) resolve(address.port);
      else reject(new Error('server has no TCP address'));
    });
  });
}
