/**
 * The node-agent ConfigMap's JSON, as Velero v1.18.3 defines it (`pkg/types/node_agent.go`, and `podResources` in
 * `pkg/util/kube/pod.go`), after validation.
 * The parser in this directory produces these objects deeply frozen; nothing may mutate them.
 */

/** A Kubernetes label selector requirement. */
export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: readonly string[];
}

/** A Kubernetes label selector. */
export interface LabelSelector {
  matchLabels?: Readonly<Record<string, string>>;
  matchExpressions?: readonly LabelSelectorRequirement[];
}

/** `loadAffinity[]`: where data-mover pods may run, optionally only for one (final) backupPVC storage class. */
export interface LoadAffinity {
  nodeSelector: LabelSelector;
  storageClass?: string;
}

/** `loadConcurrency.perNodeConfig[]`. */
export interface RuledConfig {
  nodeSelector: LabelSelector;
  number: number;
}

/** `loadConcurrency`. */
export interface LoadConcurrency {
  globalConfig?: number;
  perNodeConfig?: readonly RuledConfig[];
  /** Maximum number of DataUploads (and siblings) that may be Accepted or Prepared at once; > 0 to enable. */
  prepareQueueLength?: number;
}

/** `backupPVC["<source storage class>"]`. */
export interface BackupPVCConfig {
  storageClass?: string;
  readOnly?: boolean;
  spcNoRelabeling?: boolean;
  annotations?: Readonly<Record<string, string>>;
  /**
   * Secrets copied from the source PVC's namespace into the DataUpload's namespace before the backupPVC is created
   * (for CSI drivers that need namespace-scoped secrets to provision), and deleted when the DataUpload ends.
   * Valid object names, each once, in the order given.
   */
  secretNames?: readonly string[];
  /** ConfigMaps copied and deleted like {@link BackupPVCConfig.secretNames}. */
  configMapNames?: readonly string[];
}

/** `restorePVC` (DataDownload only: accepted and ignored). */
export interface RestorePVCConfig {
  ignoreDelayBinding?: boolean;
  secretNames?: readonly string[];
  configMapNames?: readonly string[];
}

/** `podResources`: Kubernetes quantities. Unlike Velero, each value stands on its own. */
export interface PodResources {
  cpuRequest?: string;
  memoryRequest?: string;
  cpuLimit?: string;
  memoryLimit?: string;
  ephemeralStorageRequest?: string;
  ephemeralStorageLimit?: string;
}

/** `cachePVC` (restore only: accepted and ignored). */
export interface CachePVCConfig {
  storageClass?: string;
  residentThresholdInMB?: number;
}

/** The whole node-agent config. Every field is optional; an empty object means Velero's defaults. */
export interface NodeAgentConfig {
  loadConcurrency?: LoadConcurrency;
  loadAffinity?: readonly LoadAffinity[];
  backupPVC?: Readonly<Record<string, BackupPVCConfig>>;
  restorePVC?: RestorePVCConfig;
  podResources?: PodResources;
  priorityClassName?: string;
  privilegedFsBackup?: boolean;
  cachePVC?: CachePVCConfig;
  podLabels?: Readonly<Record<string, string>>;
  podAnnotations?: Readonly<Record<string, string>>;
}
