/** Free loopback TCP ports, picked at run time so parallel clusters never collide. */
import { createServer, type Server } from 'node:net';

/**
 * Reserves `count` distinct free ports on 127.0.0.1 by binding them all at once, then releases them for the
 * caller. (Another process could grab one in between; the window is tiny and a clash fails loudly at start.)
 */
export async function freeLoopbackPorts(count: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: count }, () => listenOnAnyPort()));
  const ports = servers.map((s) => {
    const addr = s.address();
    if (addr === null || typeof addr === 'string') throw new Error('unexpected server address');
    return addr.port;
  });
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}

function listenOnAnyPort(): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}
