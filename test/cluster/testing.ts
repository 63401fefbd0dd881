/** Small helpers for e2e tests on the test control plane. */
import type { Cluster, KubectlResult } from './index.js';

/** Anything that can run kubectl: a started {@link Cluster} or the result of `connectCluster()`. */
export interface KubectlRunner {
  kubectl: Cluster['kubectl'];
}

/** Runs kubectl and returns stdout; a non-zero exit throws with kubectl's stderr. */
export async function kubectlOk(k: KubectlRunner, args: string[], input?: string): Promise<string> {
  const res: KubectlResult = await k.kubectl(args, input === undefined ? undefined : { input });
  if (res.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited with ${res.code}: ${res.stderr.trim()}`);
  return res.stdout;
}

/** `kubectl apply -f -` of a YAML (or JSON) manifest. */
export function applyManifest(k: KubectlRunner, manifest: string): Promise<string> {
  return kubectlOk(k, ['apply', '-f', '-'], manifest);
}

/** Deletes namespaces without waiting for their contents to go (the namespace controller cleans up). */
export async function deleteNamespaces(k: KubectlRunner, ...names: string[]): Promise<void> {
  if (names.length > 0) await k.kubectl(['delete', 'namespace', '--wait=false', '--ignore-not-found', ...names]);
}
