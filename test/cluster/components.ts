/**
 * Command lines of the control-plane components. Pure functions of a {@link Layout}, so a restart reproduces
 * exactly the same flags.
 */
import { join } from 'node:path';
import type { Pki } from './pki.js';

/** Loopback ports picked for one cluster. */
export interface Ports {
  readonly etcdClient: number;
  readonly etcdPeer: number;
  readonly apiServer: number;
  readonly controllerManager: number;
  readonly scheduler: number;
}

/** Everything the command lines depend on. */
export interface Layout {
  readonly binDir: string;
  readonly runDir: string;
  readonly ports: Ports;
  readonly pki: Pki;
  /** Kubeconfig paths per identity. */
  readonly kubeconfigs: {
    readonly admin: string;
    readonly kcm: string;
    readonly scheduler: string;
    readonly kwok: string;
    readonly fakeCsi: string;
  };
  readonly kwokStagesFile: string;
  /** Audit policy and log of kube-apiserver; no auditing when absent. */
  readonly audit?: { readonly policyFile: string; readonly logFile: string } | undefined;
}

/** A component's executable, arguments and log file. */
export interface CommandLine {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly logFile: string;
}

/** Client QPS for KCM and the scheduler: the defaults (20/50) would throttle benchmarks long before the server. */
const CLIENT_QPS = 500;
const CLIENT_BURST = 1000;

function commandLine(layout: Layout, name: string, args: string[]): CommandLine {
  return { name, command: join(layout.binDir, name), args, logFile: join(layout.runDir, `${name}.log`) };
}

/** etcd on tmpfs without fsync: durability is worthless for a throwaway test cluster. */
export function etcdCommand(l: Layout): CommandLine {
  const client = `http://127.0.0.1:${l.ports.etcdClient}`;
  const peer = `http://127.0.0.1:${l.ports.etcdPeer}`;
  return commandLine(l, 'etcd', [
    '--name=e2e',
    `--data-dir=${join(l.runDir, 'etcd')}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=e2e=${peer}`,
    '--unsafe-no-fsync=true',
    '--quota-backend-bytes=2147483648',
    '--auto-compaction-retention=1',
    '--log-level=warn',
  ]);
}

/** kube-apiserver with RBAC, the Node authorizer and the default admission plugins (PodSecurity included). */
export function apiServerCommand(l: Layout): CommandLine {
  return commandLine(l, 'kube-apiserver', [
    `--etcd-servers=http://127.0.0.1:${l.ports.etcdClient}`,
    '--bind-address=127.0.0.1',
    `--secure-port=${l.ports.apiServer}`,
    // Without it the server derives an address from the default route (or fails when there is none).
    '--advertise-address=127.0.0.1',
    // Endpoints validation rejects loopback IPs; the lease reconciler would complain forever.
    '--endpoint-reconciler-type=none',
    `--tls-cert-file=${l.pki.apiServerCert}`,
    `--tls-private-key-file=${l.pki.apiServerKey}`,
    `--client-ca-file=${l.pki.caFile}`,
    `--token-auth-file=${l.pki.tokenFile}`,
    '--authorization-mode=Node,RBAC',
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${l.pki.serviceAccountPub}`,
    `--service-account-signing-key-file=${l.pki.serviceAccountKey}`,
    '--service-cluster-ip-range=10.96.0.0/16',
    '--allow-privileged=true',
    // Off as in production; DUO_APISERVER_PROFILING=1 turns it on to profile the API server (see test/bench/run.ts).
    process.env.DUO_APISERVER_PROFILING === '1' ? '--profiling=true' : '--profiling=false',
    '--shutdown-watch-termination-grace-period=2s',
    ...(l.audit ? [`--audit-policy-file=${l.audit.policyFile}`, `--audit-log-path=${l.audit.logFile}`] : []),
  ]);
}

/** kube-controller-manager: every default controller except the HPA (no metrics API here). */
export function controllerManagerCommand(l: Layout): CommandLine {
  const kc = l.kubeconfigs.kcm;
  return commandLine(l, 'kube-controller-manager', [
    `--kubeconfig=${kc}`,
    `--authentication-kubeconfig=${kc}`,
    `--authorization-kubeconfig=${kc}`,
    '--bind-address=127.0.0.1',
    `--secure-port=${l.ports.controllerManager}`,
    '--leader-elect=false',
    '--controllers=*,-horizontal-pod-autoscaler-controller',
    '--use-service-account-credentials=false',
    `--service-account-private-key-file=${l.pki.serviceAccountKey}`,
    `--root-ca-file=${l.pki.caFile}`,
    '--cluster-name=e2e',
    `--kube-api-qps=${CLIENT_QPS}`,
    `--kube-api-burst=${CLIENT_BURST}`,
  ]);
}

/** kube-scheduler with raised client QPS. */
export function schedulerCommand(l: Layout): CommandLine {
  const kc = l.kubeconfigs.scheduler;
  return commandLine(l, 'kube-scheduler', [
    `--kubeconfig=${kc}`,
    `--authentication-kubeconfig=${kc}`,
    `--authorization-kubeconfig=${kc}`,
    '--bind-address=127.0.0.1',
    `--secure-port=${l.ports.scheduler}`,
    '--leader-elect=false',
    `--kube-api-qps=${CLIENT_QPS}`,
    `--kube-api-burst=${CLIENT_BURST}`,
  ]);
}

/** kwok plays the kubelet for Nodes labelled `type=kwok`; pod and node IPs come from TEST-NET ranges. */
export function kwokCommand(l: Layout): CommandLine {
  return commandLine(l, 'kwok', [
    `--kubeconfig=${l.kubeconfigs.kwok}`,
    '--manage-all-nodes=false',
    '--manage-nodes-with-label-selector=type=kwok',
    '--cidr=203.0.113.0/24',
    '--node-ip=198.51.100.1',
    '--node-lease-duration-seconds=40',
    `--config=${l.kwokStagesFile}`,
  ]);
}
