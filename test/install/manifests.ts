/**
 * Helpers for the install tests: render a kustomization with kubectl's built-in kustomize, find objects in the
 * result, flatten RBAC rules into comparable permissions, and check a pod spec against the PodSecurity
 * `restricted` profile.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';

const run = promisify(execFile);

/** The repository root (this file lives in `<root>/test/install/`). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A rendered manifest: any Kubernetes object, read loosely. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

/** An RBAC policy rule. */
export interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

/** Renders `config/<dir>` (relative to the repository root) with `kubectl kustomize`. */
export async function renderKustomization(dir: string): Promise<Manifest[]> {
  const { stdout } = await run('kubectl', ['kustomize', join(REPO_ROOT, dir)], { maxBuffer: 32 * 1024 * 1024 });
  return parseManifests(stdout);
}

/** Parses a multi-document YAML stream, skipping empty documents; a YAML error throws. */
export function parseManifests(text: string): Manifest[] {
  return parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`invalid YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
      return doc.toJS() as Manifest | null;
    })
    .filter((m): m is Manifest => m !== null);
}

/** The one object of a kind and name; throws, listing what is there, when it is missing. */
export function findManifest(manifests: readonly Manifest[], kind: string, name: string): Manifest {
  const found = manifests.find((m) => m.kind === kind && m.metadata.name === name);
  if (!found) {
    const present = manifests.map((m) => `${m.kind}/${m.metadata.name}`).join(', ');
    throw new Error(`${kind}/${name} is not in the rendered manifests (${present})`);
  }
  return found;
}

/** The rules of a Role or ClusterRole manifest. */
export function rulesOf(role: Manifest): PolicyRule[] {
  return (role.rules as PolicyRule[] | undefined) ?? [];
}

/**
 * Flattens rules into sorted `group/resource: verb` strings (core group written as `core`), so two rule lists
 * that grant the same compare equal however they are grouped.
 */
export function permissions(rules: readonly PolicyRule[]): string[] {
  const out = new Set<string>();
  for (const rule of rules) {
    for (const group of rule.apiGroups ?? ['']) {
      for (const resource of rule.resources ?? []) {
        for (const verb of rule.verbs) out.add(`${group === '' ? 'core' : group}/${resource}: ${verb}`);
      }
    }
  }
  return [...out].sort();
}

/** Expands `{ 'group/resource': [verbs] }` into the same form as {@link permissions}. */
export function expectedPermissions(spec: Readonly<Record<string, readonly string[]>>): string[] {
  return Object.entries(spec)
    .flatMap(([resource, verbs]) => verbs.map((verb) => `${resource}: ${verb}`))
    .sort();
}

/** Every place in the rules where a wildcard grants more than it names. */
export function wildcards(rules: readonly PolicyRule[]): string[] {
  const fields = ['apiGroups', 'resources', 'verbs', 'resourceNames', 'nonResourceURLs'] as const;
  return rules.flatMap((rule, i) =>
    fields.flatMap((field) => ((rule[field] ?? []).some((v) => v.includes('*')) ? [`rules[${i}].${field}`] : [])),
  );
}

/** A pod spec, read loosely. */
export interface PodSpecLike {
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  securityContext?: SecurityContextLike;
  containers?: ContainerLike[];
  initContainers?: ContainerLike[];
  volumes?: Record<string, unknown>[];
}

/** The security-relevant fields of a container. */
export interface ContainerLike {
  name: string;
  securityContext?: SecurityContextLike;
  ports?: { hostPort?: number }[];
}

/** Pod- or container-level security context fields that PodSecurity checks. */
export interface SecurityContextLike {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  privileged?: boolean;
  allowPrivilegeEscalation?: boolean;
  readOnlyRootFilesystem?: boolean;
  seccompProfile?: { type: string };
  capabilities?: { add?: string[]; drop?: string[] };
  seLinuxOptions?: { type?: string };
}

/** Volume types the `restricted` profile allows. */
const RESTRICTED_VOLUME_TYPES = new Set([
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'persistentVolumeClaim',
  'projected',
  'secret',
]);

/** SELinux types the `baseline` profile (and so `restricted`) allows. */
const ALLOWED_SELINUX_TYPES = new Set(['', 'container_t', 'container_init_t', 'container_kvm_t', 'container_engine_t']);

/**
 * What in a pod spec violates PodSecurity `restricted` (Kubernetes "latest" policy); empty when it complies.
 * Covers the checks a controller's pod can trip: host namespaces, privileged, capabilities, hostPath and other
 * volume types, host ports, SELinux type, privilege escalation, non-root, seccomp.
 */
export function restrictedViolations(spec: PodSpecLike): string[] {
  const pod = spec.securityContext ?? {};
  const containers = [...(spec.containers ?? []), ...(spec.initContainers ?? [])];
  const problems: string[] = [];
  for (const field of ['hostNetwork', 'hostPID', 'hostIPC'] as const) {
    if (spec[field] === true) problems.push(`${field}=true`);
  }
  for (const volume of spec.volumes ?? []) {
    const types = Object.keys(volume).filter((k) => k !== 'name');
    const bad = types.filter((t) => !RESTRICTED_VOLUME_TYPES.has(t));
    if (bad.length > 0) problems.push(`volume ${String(volume.name)} uses ${bad.join(', ')}`);
  }
  if (pod.runAsUser === 0) problems.push('pod runAsUser=0');
  if (!ALLOWED_SELINUX_TYPES.has(pod.seLinuxOptions?.type ?? '')) problems.push('pod seLinuxOptions.type');
  for (const c of containers) problems.push(...containerViolations(c, pod));
  return problems;
}

function containerViolations(c: ContainerLike, pod: SecurityContextLike): string[] {
  const sc = c.securityContext ?? {};
  const problems: string[] = [];
  const where = `container ${c.name}`;
  if (sc.privileged === true) problems.push(`${where} privileged`);
  if (sc.allowPrivilegeEscalation !== false) problems.push(`${where} allowPrivilegeEscalation != false`);
  if ((sc.runAsNonRoot ?? pod.runAsNonRoot) !== true) problems.push(`${where} runAsNonRoot != true`);
  if (sc.runAsUser === 0) problems.push(`${where} runAsUser=0`);
  const seccomp = (sc.seccompProfile ?? pod.seccompProfile)?.type;
  if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') problems.push(`${where} seccompProfile.type`);
  if (!(sc.capabilities?.drop ?? []).includes('ALL')) problems.push(`${where} capabilities.drop lacks ALL`);
  const added = (sc.capabilities?.add ?? []).filter((cap) => cap !== 'NET_BIND_SERVICE');
  if (added.length > 0) problems.push(`${where} capabilities.add ${added.join(', ')}`);
  if (!ALLOWED_SELINUX_TYPES.has(sc.seLinuxOptions?.type ?? '')) problems.push(`${where} seLinuxOptions.type`);
  if ((c.ports ?? []).some((p) => (p.hostPort ?? 0) !== 0)) problems.push(`${where} hostPort`);
  return problems;
}

/** The Deployment's pod template as a standalone Pod manifest (for admission dry-runs). */
export function podFromDeployment(deployment: Manifest, namespace: string, name: string): Manifest {
  const template = (deployment.spec as { template: { metadata?: { labels?: Record<string, string> }; spec: object } })
    .template;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: { ...(template.metadata?.labels ?? {}) } },
    spec: structuredClone(template.spec),
  };
}

/** Replaces `$(VAR)` references the way the kubelet expands container args; unknown references stay. */
export function expandArgs(args: readonly string[], env: Readonly<Record<string, string>>): string[] {
  return args.map((arg) => arg.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (ref, name: string) => env[name] ?? ref));
}
