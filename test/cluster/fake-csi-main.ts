/**
 * Entry point of the fake CSI process: `node --import tsx fake-csi-main.ts --kubeconfig=<file> --ready-file=<file>`.
 * Logs to stdout (the cluster redirects it to `<runDir>/fake-csi.log`), touches the ready file once it serves, and
 * exits on SIGTERM/SIGINT.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { FakeCsi } from './fake-csi.js';
import { snapshotCrdsDir } from './paths.js';
import { RestClient } from './rest.js';
import { errorMessage } from './wait.js';

function log(message: string): void {
  process.stdout.write(`${new Date().toISOString()} ${message}\n`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { kubeconfig: { type: 'string' }, 'ready-file': { type: 'string' } },
  });
  if (!values.kubeconfig) throw new Error('--kubeconfig is required');
  const client = RestClient.fromKubeconfig(values.kubeconfig);
  const csi = new FakeCsi({ client, crdDir: snapshotCrdsDir(), log });
  const shutdown = (signal: string): void => {
    log(`${signal}: stopping`);
    csi.stop();
    client.close();
    process.exit(0);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  await csi.start();
  if (values['ready-file']) writeFileSync(values['ready-file'], `${process.pid}\n`);
  log('fake CSI is serving');
}

// A bug in a pass must not take storage down for the rest of the suite: log it and keep going.
process.on('unhandledRejection', (err) => log(`unhandled rejection: ${errorMessage(err)}`));

main().catch((err: unknown) => {
  log(`fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});
