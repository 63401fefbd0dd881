/**
 * `diagnose <namespace>/<name>`: prints, for a live DataUpload, the same expose report the operator records as
 * Events on a prepare timeout: the backup pod, PVC, PV, snapshots and their Warning Events, and the likely cause.
 */
import { parseArgs } from 'node:util';
import type { DataUpload } from '../api/dataupload.js';
import { phaseOf } from '../api/dataupload.js';
import { collectExposeObservation, diagnoseExpose, formatExposeReport } from '../diagnostics/index.js';
import { loadKubeConfig, readWithRetry } from '../operator.js';
import { HttpKubeClient } from '../runtime/kube-client.js';
import { isNotFound, Resources } from '../runtime/kube-api.js';

const USAGE = 'usage: dataupload-operator diagnose [--kubeconfig path] [-n namespace] <namespace>/<name> | <name>';

/** Runs `diagnose` with the given arguments (after `diagnose`) and resolves to the exit code. */
export async function diagnoseCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        kubeconfig: { type: 'string' },
        namespace: { type: 'string', short: 'n' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n${USAGE}\n`);
    return 2;
  }
  if (parsed.values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const target = parsed.positionals[0];
  if (!target || parsed.positionals.length > 1) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const [namespace, name] = target.includes('/')
    ? [target.slice(0, target.indexOf('/')), target.slice(target.indexOf('/') + 1)]
    : [parsed.values.namespace ?? process.env.VELERO_NAMESPACE ?? 'velero', target];
  const api = HttpKubeClient.fromKubeConfig(loadKubeConfig(parsed.values.kubeconfig ?? process.env.KUBECONFIG));
  try {
    let du: DataUpload;
    try {
      du = await readWithRetry(
        () => api.get<DataUpload>(Resources.dataUploads, name, namespace),
        (err, attempt) =>
          process.stderr.write(
            `warning: cannot read DataUpload ${namespace}/${name} (attempt ${attempt}): ${err instanceof Error ? err.message : String(err)}; retrying\n`,
          ),
      );
    } catch (err) {
      if (isNotFound(err)) {
        process.stderr.write(`error: DataUpload ${namespace}/${name} not found\n`);
        return 1;
      }
      throw err;
    }
    const report = diagnoseExpose(await collectExposeObservation(api, du));
    process.stdout.write(
      `DataUpload ${namespace}/${name}, phase ${phaseOf(du)}${du.status?.message ? `, message: ${du.status.message}` : ''}\n`,
    );
    process.stdout.write(`${formatExposeReport(report)}\n`);
    return 0;
  } finally {
    api.close();
  }
}
