/**
 * Where the backupPod may run: the `loadAffinity` entry that applies to a backupPVC storage class, and its
 * translation into a pod affinity (spec section 2, `loadAffinity`, and section 4.1 step 11).
 */
import type { V1Affinity, V1NodeSelector, V1NodeSelectorRequirement } from '@kubernetes/client-node';
import type { LoadAffinity } from '../config/types.js';

/**
 * Picks the one `loadAffinity` entry that applies, as Velero 1.17 does: the first whose `storageClass` equals the
 * **final** backupPVC storage class (after the `backupPVC` mapping), else the first without a storage class, else
 * none. Only one entry is ever applied. Returns the entry itself; callers must treat it as read-only.
 */
export function selectLoadAffinity(
  list: readonly LoadAffinity[] | undefined,
  finalStorageClass: string,
): LoadAffinity | undefined {
  if (list === undefined) return undefined;
  return (
    list.find((entry) => (entry.storageClass ?? '') === finalStorageClass) ??
    list.find((entry) => (entry.storageClass ?? '') === '')
  );
}

/**
 * The pod affinity for a `loadAffinity` entry: one required nodeSelectorTerm whose expressions are the entry's
 * `matchLabels` as `In` requirements, **sorted by key** so the same config always yields the same pod (Go iterates
 * the map in random order), followed by copies of its `matchExpressions`.
 *
 * A selector without any requirement gives an empty affinity `{}`, not an empty term: Kubernetes reads an empty
 * nodeSelectorTerm as "matches no node", which would leave the pod unschedulable.
 */
export function toNodeAffinity(a: LoadAffinity): V1Affinity {
  const requirements = nodeSelectorRequirements(a);
  if (requirements.length === 0) return {};
  return {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: requirements }] },
    },
  };
}

function nodeSelectorRequirements(a: LoadAffinity): V1NodeSelectorRequirement[] {
  const labels = Object.entries(a.nodeSelector.matchLabels ?? {}).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
  const fromLabels = labels.map(([key, value]) => ({ key, operator: 'In', values: [value] }));
  const fromExpressions = (a.nodeSelector.matchExpressions ?? []).map(({ key, operator, values }) =>
    values === undefined ? { key, operator } : { key, operator, values: [...values] },
  );
  return [...fromLabels, ...fromExpressions];
}

/**
 * The backupPod's node affinity as Velero 1.18.3 builds it: the requirements of the `loadAffinity` entry (if any),
 * then the OS pin (`kubernetes.io/os NotIn [windows]` on Linux, `In [windows]` on Windows; 1.18 pins the OS here
 * instead of with a nodeSelector). With a volume topology (the source PV's required node affinity, for a
 * WaitForFirstConsumer class) every topology term gets those requirements appended, so the pod lands where the
 * volume can be attached; otherwise they form the only term. Unlike Velero, the config is never mutated, so the
 * OS requirement never accumulates across DataUploads (velero#9735).
 */
export function backupPodAffinity(input: {
  loadAffinity: LoadAffinity | undefined;
  nodeOS: 'linux' | 'windows';
  volumeTopology?: V1NodeSelector;
}): V1Affinity {
  const requirements: V1NodeSelectorRequirement[] = [
    ...(input.loadAffinity ? nodeSelectorRequirements(input.loadAffinity) : []),
    { key: NODE_OS_LABEL, operator: input.nodeOS === 'windows' ? 'In' : 'NotIn', values: ['windows'] },
  ];
  const topology = input.volumeTopology?.nodeSelectorTerms ?? [];
  const nodeSelectorTerms =
    topology.length > 0
      ? topology.map((term) => ({
          ...structuredClone(term),
          matchExpressions: [...structuredClone(term.matchExpressions ?? []), ...requirements],
        }))
      : [{ matchExpressions: requirements }];
  return { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms } } };
}

const NODE_OS_LABEL = 'kubernetes.io/os';
