/**
 * Boots the operator: options → API client → node-agent config (fatal when bad) → backupPod template →
 * metrics/health → caches → leader election → workers; and shuts it down in order on SIGTERM/SIGINT.
 */
import pRetry from 'p-retry';
import type { ConfigMap, DaemonSet } from './api/kube.js';
import type { BindAddress, OperatorOptions } from './config/options.js';
import { formatIssue, parseNodeAgentConfigMap } from './config/node-agent-config.js';
import type { NodeAgentConfig } from './config/types.js';
import { deepFreeze } from './config/deep-freeze.js';
import { DataUploadController } from './controller/controller.js';
import {
  backupPodTemplateFromDaemonSet,
  backupPodTemplateFromOptions,
  mergeBackupPodTemplate,
} from './exposer/index.js';
import type { BackupPodTemplate, CopyKind } from './exposer/index.js';
import { COPY_PERMISSION_HINT } from './controller/errors.js';
import { LABEL_BACKUP_PVC_SECRET } from './api/names.js';
import { EventRecorder } from './runtime/event-recorder.js';
import { HealthServer } from './runtime/health.js';
import { HttpKubeClient } from './runtime/kube-client.js';
import { loadKubeConfig as loadLightKubeConfig } from './runtime/kubeconfig.js';
import type { KubeConfigLike } from './runtime/kubeconfig.js';
import { isNotFound, isTransient, KubeApiError, Resources } from './runtime/kube-api.js';
import type { KubeApi, ResourceRef } from './runtime/kube-api.js';
import { LeaderElector, leaderIdentity } from './runtime/leader-election.js';
import { Lifecycle } from './runtime/lifecycle.js';
import type { SignalSource } from './runtime/lifecycle.js';
import type { Logger } from './runtime/logger.js';
import { Metrics } from './runtime/metrics.js';

/** The events.k8s.io `reportingController` of every Event we record. */
export const REPORTING_CONTROLLER = 'velero.io/dataupload-operator';

/** A boot failure: the operator refuses to start, naming the problem. */
export class BootError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BootError';
  }
}

/** Process-level collaborators, injected so tests can run the operator in-process. */
export interface OperatorEnv {
  logger: Logger;
  signals: SignalSource;
  exit: (code: number) => void;
}

/** A running operator. */
export interface RunningOperator {
  controller: DataUploadController;
  health: HealthServer;
  /** Resolves with the exit code once shutdown completed. */
  done: Promise<number>;
  /** Starts the orderly shutdown (what SIGTERM does). */
  shutdown(reason: string): Promise<number>;
}

/** Loads the kubeconfig named by the options, or in-cluster / default config. */
export function loadKubeConfig(kubeconfig: string | undefined): KubeConfigLike {
  return loadLightKubeConfig(kubeconfig);
}

/** How a start-up read (and `diagnose`) retries transient API errors. */
export interface ReadRetry {
  /** Retries after the first attempt. */
  readonly retries: number;
  readonly minTimeoutMs: number;
  readonly maxTimeoutMs: number;
}

/** Five attempts within about 8 s (backoff 0.5 s → 4 s, jittered): a short API outage, not a crash loop. */
export const READ_RETRY: ReadRetry = Object.freeze({ retries: 4, minTimeoutMs: 500, maxTimeoutMs: 4_000 });

/**
 * Runs one API read, retrying transient failures (no answer, 408, 429, 5xx) with jittered exponential backoff.
 * Any other error, or the last transient one, is thrown as it is, so callers classify it as before.
 */
export function readWithRetry<T>(
  read: () => Promise<T>,
  onRetry: (err: unknown, attempt: number) => void,
  policy: ReadRetry = READ_RETRY,
): Promise<T> {
  return pRetry(read, {
    retries: policy.retries,
    minTimeout: policy.minTimeoutMs,
    maxTimeout: policy.maxTimeoutMs,
    randomize: true,
    shouldRetry: ({ error }) => isTransient(error),
    onFailedAttempt: ({ error, attemptNumber, retriesLeft }) => {
      if (retriesLeft > 0 && isTransient(error)) onRetry(error, attemptNumber);
    },
  });
}

function logRetry(logger: Logger, what: string): (err: unknown, attempt: number) => void {
  return (err, attempt) => logger.warn({ attempt, err: errorText(err) }, `cannot read ${what} yet; retrying`);
}

/**
 * Reads the node-agent ConfigMap once. Like Velero 1.17+, a named ConfigMap that is missing or invalid stops
 * the operator; unlike Velero, the message names the key and JSON path of every problem.
 */
export async function loadNodeAgentConfig(
  api: KubeApi,
  options: OperatorOptions,
  logger: Logger,
  retry: ReadRetry = READ_RETRY,
): Promise<NodeAgentConfig> {
  const name = options.nodeAgentConfigMap;
  if (!name) {
    logger.info({}, 'no --node-agent-configmap given: using Velero defaults');
    return deepFreeze({});
  }
  let cm: ConfigMap;
  try {
    cm = await readWithRetry(
      () => api.get<ConfigMap>(Resources.configMaps, name, options.namespace),
      logRetry(logger, `node-agent ConfigMap ${options.namespace}/${name}`),
      retry,
    );
  } catch (err) {
    if (isNotFound(err)) throw new BootError(`node-agent ConfigMap ${options.namespace}/${name} not found`);
    throw new BootError(`cannot read node-agent ConfigMap ${options.namespace}/${name}: ${errorText(err)}`);
  }
  const result = parseNodeAgentConfigMap(cm);
  for (const warning of result.warnings) logger.warn({ configMap: name }, `node-agent config: ${formatIssue(warning)}`);
  if (!result.ok) {
    throw new BootError(
      `invalid node-agent ConfigMap ${options.namespace}/${name}:\n${result.errors.map((e) => `  ${formatIssue(e)}`).join('\n')}`,
    );
  }
  return dropMissingPriorityClass(api, result.config, logger, retry);
}

/** Velero drops a priority class that does not exist (pods would be rejected); so do we, loudly. */
async function dropMissingPriorityClass(
  api: KubeApi,
  config: NodeAgentConfig,
  logger: Logger,
  retry: ReadRetry,
): Promise<NodeAgentConfig> {
  const name = config.priorityClassName;
  if (!name) return config;
  try {
    await readWithRetry(
      () => api.get(Resources.priorityClasses, name),
      logRetry(logger, `PriorityClass ${name}`),
      retry,
    );
    return config;
  } catch (err) {
    logger.warn(
      { priorityClassName: name, err: errorText(err) },
      'priority class not found in the cluster: backup pods will use the default priority',
    );
    const { priorityClassName: _dropped, ...rest } = config;
    return deepFreeze(structuredClone(rest));
  }
}

/**
 * What the backupPod inherits: the node-agent DaemonSet's template when it exists (as Velero does), with the
 * operator's flags taking precedence; otherwise the flags alone, which must then name an image.
 */
export async function loadBackupPodTemplate(
  api: KubeApi,
  options: OperatorOptions,
  logger: Logger,
  retry: ReadRetry = READ_RETRY,
): Promise<BackupPodTemplate> {
  const overrides: Partial<BackupPodTemplate> = {
    ...(options.backupPodImage ? { image: options.backupPodImage } : {}),
    ...(options.backupPodServiceAccount ? { serviceAccountName: options.backupPodServiceAccount } : {}),
  };
  const dsName = options.inheritFromNodeAgent;
  if (dsName) {
    try {
      const ds = await readWithRetry(
        () => api.get<DaemonSet>(Resources.daemonSets, dsName, options.namespace),
        logRetry(logger, `DaemonSet ${options.namespace}/${dsName}`),
        retry,
      );
      const inherited = backupPodTemplateFromDaemonSet(ds);
      if (!inherited.ok) throw new BootError(`DaemonSet ${options.namespace}/${dsName}: ${inherited.message}`);
      for (const w of inherited.warnings) logger.warn({ daemonSet: dsName }, w);
      logger.info({ daemonSet: dsName }, 'backup pods inherit the node-agent pod template');
      return mergeBackupPodTemplate(inherited.template, overrides);
    } catch (err) {
      if (!isNotFound(err))
        throw err instanceof BootError
          ? err
          : new BootError(`cannot read DaemonSet ${options.namespace}/${dsName}: ${errorText(err)}`);
    }
  }
  if (!options.backupPodImage) {
    throw new BootError(
      `--backup-pod-image is required: there is no node-agent DaemonSet ${options.namespace}/${dsName ?? ''} to inherit the image from`,
    );
  }
  return backupPodTemplateFromOptions({
    image: options.backupPodImage,
    serviceAccountName: options.backupPodServiceAccount,
  });
}

/**
 * Whether the operator may keep copies of the kinds the config asks to copy (`backupPVC.<class>.secretNames` /
 * `configMapNames`). Those permissions are opt-in (config/secret-copies); without them the operator still runs,
 * and a DataUpload that needs a copy fails at once with the returned message instead of waiting for a timeout.
 */
export async function checkCopyPermissions(
  api: KubeApi,
  namespace: string,
  config: NodeAgentConfig,
  logger: Logger,
  retry: ReadRetry = READ_RETRY,
): Promise<Partial<Record<CopyKind, string>>> {
  const problems: Partial<Record<CopyKind, string>> = {};
  const kinds: [CopyKind, 'secretNames' | 'configMapNames', ResourceRef][] = [
    ['Secret', 'secretNames', Resources.secrets],
    ['ConfigMap', 'configMapNames', Resources.configMaps],
  ];
  for (const [kind, field, resource] of kinds) {
    const wanted = Object.values(config.backupPVC ?? {}).some((entry) => (entry[field]?.length ?? 0) > 0);
    if (!wanted) continue;
    try {
      await readWithRetry(
        () => api.list(resource, { namespace, labelSelector: LABEL_BACKUP_PVC_SECRET, limit: 1 }),
        logRetry(logger, `${resource.resource} in ${namespace}`),
        retry,
      );
    } catch (err) {
      if (!(err instanceof KubeApiError) || err.code !== 403) throw err;
      problems[kind] =
        `the operator may not list ${resource.resource} in namespace "${namespace}" (${err.message}); ` +
        COPY_PERMISSION_HINT;
      logger.warn({ kind, field }, `copies for backupPVC.${field} are not possible: ${problems[kind]}`);
    }
  }
  return problems;
}

/** Starts the operator; resolves once it runs (caches may still be syncing). Rejects with BootError. */
export async function startOperator(options: OperatorOptions, env: OperatorEnv): Promise<RunningOperator> {
  const { logger } = env;
  const kc = loadKubeConfig(options.kubeconfig);
  const metrics = new Metrics();
  const server = kc.getCurrentCluster()?.server ?? '';
  const api = HttpKubeClient.fromKubeConfig(kc, {
    userAgent: 'dataupload-operator',
    ...(options.kubeApiQps > 0 ? { qps: options.kubeApiQps, burst: options.kubeApiBurst || undefined } : {}),
    onRequest: metrics.restClientObserver(hostOf(server)),
  });

  const config = await loadNodeAgentConfig(api, options, logger);
  const podTemplate = await loadBackupPodTemplate(api, options, logger);
  const copyProblems = await checkCopyPermissions(api, options.namespace, config, logger);
  const identity = leaderIdentity(options.podName);
  const recorder = new EventRecorder({
    api,
    reportingController: REPORTING_CONTROLLER,
    reportingInstance: identity.slice(0, 128),
    logger,
    hooks: metrics.eventRecorderHooks(),
  });
  const controller = new DataUploadController({
    api,
    namespace: options.namespace,
    context: {
      nodeName: options.nodeName ?? options.podName,
      prepareTimeoutMs: options.prepareTimeoutMs,
      config,
      podTemplate,
      securityContext: options.backupPodSecurityContext,
      maxConcurrentExposes: options.maxConcurrentExposes,
      copyProblems,
    },
    events: recorder,
    workers: options.workers,
    logger,
    metrics,
  });

  const health = new HealthServer({
    metricsAddress: addressText(options.metricsBindAddress),
    probeAddress: addressText(options.healthProbeBindAddress),
    metrics,
    logger,
  });
  health.addReadinessCheck('caches-synced', () => controller.hasSynced());
  health.addReadinessCheck('config-loaded', () => true);
  const bound = await health.start();
  logger.info({ metrics: bound.metrics, probes: bound.probes }, 'serving metrics and health probes');

  const caches = new AbortController();
  // Assigned once everything is wired; the leader callbacks only run after that.
  let synced: Promise<void> = Promise.resolve();
  const leading = new AbortController();
  const elector = options.leaderElect
    ? new LeaderElector({
        api,
        namespace: options.leaderElectionNamespace,
        name: options.leaseName,
        identity,
        logger,
        callbacks: {
          onStartedLeading: (signal) => {
            metrics.setLeaderStatus(options.leaseName, true);
            logger.info({ identity }, 'became leader: reconciling');
            signal.addEventListener('abort', () => leading.abort(), { once: true });
            void synced.then(() => controller.runWorkers(leading.signal));
          },
          onStoppedLeading: (reason) => {
            metrics.setLeaderStatus(options.leaseName, false);
            logger.warn({ identity, reason }, 'stopped leading');
            leading.abort();
            // Only a lost Lease is a failure; 'released' and 'stopped' are our own shutdown.
            if (reason === 'lost') void lifecycle.shutdown('lost leadership', 1);
          },
          onNewLeader: (holder) => logger.info({ leader: holder }, 'leader is now known'),
        },
      })
    : undefined;
  if (elector) health.addLivenessCheck('leader-election', () => elector.isHealthy());

  const lifecycle = new Lifecycle({ signals: env.signals, exit: env.exit, logger })
    .addStep('stop-workers', () => {
      leading.abort();
    })
    .addStep('drain', () => controller.drain(15_000))
    .addStep('stop-caches', () => {
      caches.abort();
      controller.stopCaches();
    })
    .addStep('flush-events', () => recorder.flush(5_000))
    .addStep('release-lease', () => elector?.release())
    .addStep('close-servers', async () => {
      recorder.close();
      await health.close();
      api.close();
    });
  lifecycle.listen();

  synced = controller.startCaches(caches.signal).then(() => logger.info({}, 'caches synced'));
  if (elector) void elector.run(caches.signal);
  else void synced.then(() => controller.runWorkers(leading.signal));

  return { controller, health, done: lifecycle.done, shutdown: (reason) => lifecycle.shutdown(reason) };
}

function addressText(address: BindAddress | undefined): string {
  if (!address) return '0';
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

function hostOf(server: string): string {
  try {
    return new URL(server).host;
  } catch {
    return server;
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
