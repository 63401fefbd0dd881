/**
 * The JSON field names of Velero v1.18.3's node-agent config (`pkg/types/node_agent.go`, with `kube.PodResources`
 * and `metav1.LabelSelector`), by where they appear. The unit tests check that the parser knows each of them;
 * test/e2e/velero-config-fields.test.ts checks this list against Velero's own source, so a new field fails there.
 */
export const VELERO_V1_18_3_FIELDS: Readonly<Record<string, readonly string[]>> = {
  '': [
    'loadConcurrency',
    'loadAffinity',
    'backupPVC',
    'restorePVC',
    'podResources',
    'priorityClassName',
    'privilegedFsBackup',
    'cachePVC',
    'podAnnotations',
    'podLabels',
  ],
  loadConcurrency: ['globalConfig', 'perNodeConfig', 'prepareQueueLength'],
  'loadConcurrency.perNodeConfig[]': ['nodeSelector', 'number'],
  'loadAffinity[]': ['nodeSelector', 'storageClass'],
  'backupPVC[<class>]': ['storageClass', 'readOnly', 'spcNoRelabeling', 'annotations', 'secretNames', 'configMapNames'],
  restorePVC: ['ignoreDelayBinding', 'secretNames', 'configMapNames'],
  podResources: [
    'cpuRequest',
    'cpuLimit',
    'memoryRequest',
    'memoryLimit',
    'ephemeralStorageRequest',
    'ephemeralStorageLimit',
  ],
  cachePVC: ['storageClass', 'residentThresholdInMB'],
  nodeSelector: ['matchLabels', 'matchExpressions'],
  'nodeSelector.matchExpressions[]': ['key', 'operator', 'values'],
};
