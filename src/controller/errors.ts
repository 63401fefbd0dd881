/**
 * Which API errors are worth retrying. A write the API server refuses for a reason that will not change by
 * retrying ends the DataUpload at once (Velero fails it too); everything else keeps its backoff.
 *
 * Permanent:
 * - 400 BadRequest, 405 MethodNotAllowed, 413 RequestEntityTooLarge, 415 UnsupportedMediaType, 422 Invalid: the
 *   request itself is wrong (a label value over 63 characters, a field the schema rejects);
 * - 403 Forbidden from admission: PodSecurity, a validating webhook, a LimitRange. The same object is refused
 *   again however often it is sent.
 *
 * Transient:
 * - no answer, 408, 429 and 5xx (including an admission webhook that cannot be reached);
 * - 409 Conflict (the reconciler plans again from fresher state) and other 409s;
 * - 401 (a token being rotated) and 404 on a create (a namespace that is being created);
 * - 403 Forbidden that RBAC could still grant (`cannot <verb> resource`), that a ResourceQuota may allow once
 *   other pods finish (`exceeded quota`), or from a namespace being terminated.
 */
import { KubeApiError, Resources } from '../runtime/kube-api.js';
import type { Action, Refusal } from './types.js';

/** Raised when a copy changed between our read and our write; the reconciler plans again. */
export class StaleCopyError extends Error {
  constructor(what: string) {
    super(`${what} changed since it was read; planning again`);
    this.name = 'StaleCopyError';
  }
}

/**
 * Raised when the name a copy needs is taken by something else in the DataUpload's namespace: an object that is
 * not a copy, or a copy of different content. Retrying cannot help (see errors.ts).
 */
export class CopyCollisionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CopyCollisionError';
  }
}

/** What to do about a missing permission for copies. */
export const COPY_PERMISSION_HINT =
  'grant it with the opt-in overlay config/secret-copies (kubectl apply -k config/secret-copies), ' +
  'or add its component config/components/backup-pvc-copies to your own overlay';

const PERMANENT_CODES = new Set([400, 405, 413, 415, 422]);
/** How RBAC words a denial: `User "x" cannot create resource "pods" in API group "" in the namespace "velero"`. */
const RBAC_DENIAL = /\bcannot [a-z]+ resource "/;
const QUOTA_DENIAL = /exceeded quota|quota(s)? .*(exceeded|must specify)/i;
const TERMINATING_NAMESPACE = /because it is being terminated/;

/** True when retrying the same request cannot succeed. */
export function isPermanentApiError(err: unknown): err is KubeApiError {
  if (!(err instanceof KubeApiError)) return false;
  if (PERMANENT_CODES.has(err.code)) return true;
  if (err.code !== 403) return false;
  return !RBAC_DENIAL.test(err.message) && !QUOTA_DENIAL.test(err.message) && !TERMINATING_NAMESPACE.test(err.message);
}

/**
 * The refusal an executor error stands for, or `undefined` when the error deserves a retry. Only writes to child
 * objects qualify: a refused write to the DataUpload itself is our bug or a broken CRD, and failing the
 * DataUpload would need that very write.
 */
export function refusalOf(action: Action, err: unknown): Refusal | undefined {
  if (action.type === 'copy') return copyRefusalOf(action, err);
  if (!isPermanentApiError(err)) return undefined;
  switch (action.type) {
    case 'create':
      return {
        verb: 'create',
        resource: action.resource,
        name: action.object.metadata.name ?? '',
        namespace: action.object.metadata.namespace,
        code: err.code,
        reason: err.reason,
        message: err.message,
      };
    case 'patch':
    case 'delete':
      return {
        verb: action.type,
        resource: action.resource,
        name: action.name,
        namespace: action.namespace,
        code: err.code,
        reason: err.reason,
        message: err.message,
      };
    default:
      return undefined;
  }
}

/**
 * A copy fails for good when its name is taken by something else (a collision), when the source does not exist
 * (the config names it: 404), when RBAC denies it (the copy permissions are opt-in: the refusal says where to get
 * them), or for the usual permanent reasons.
 */
function copyRefusalOf(action: Extract<Action, { type: 'copy' }>, err: unknown): Refusal | undefined {
  const base = {
    verb: 'copy' as const,
    resource: action.kind === 'Secret' ? Resources.secrets : Resources.configMaps,
    name: action.name,
    namespace: action.namespace,
  };
  if (err instanceof CopyCollisionError) return { ...base, code: 409, reason: 'Collision', message: err.message };
  if (!(err instanceof KubeApiError)) return undefined;
  const refusal = { ...base, code: err.code, reason: err.reason, message: err.message };
  if (err.code === 404) return refusal;
  if (err.code === 403 && RBAC_DENIAL.test(err.message)) return { ...refusal, hint: COPY_PERMISSION_HINT };
  return isPermanentApiError(err) ? refusal : undefined;
}

/** Whether `action` is the write that `refusal` refused. */
export function isRefusedAction(refusal: Refusal, action: Action): boolean {
  if (action.type === 'copy') {
    return (
      refusal.verb === 'copy' &&
      refusal.resource.kind === action.kind &&
      refusal.name === action.name &&
      refusal.namespace === action.namespace
    );
  }
  if (action.type !== refusal.verb) return false;
  if (action.type === 'create') {
    return (
      action.resource === refusal.resource &&
      action.object.metadata.name === refusal.name &&
      action.object.metadata.namespace === refusal.namespace
    );
  }
  return (
    (action.type === 'patch' || action.type === 'delete') &&
    action.resource === refusal.resource &&
    action.name === refusal.name &&
    action.namespace === refusal.namespace
  );
}

/**
 * `create Pod velero/x rejected by the API server (403 Forbidden): <the API server's words>`; for a copy,
 * `copy Secret into velero/x failed (404 NotFound): secrets "x" not found`, plus the hint when there is one.
 */
export function describeRefusal(r: Refusal): string {
  const name = r.namespace ? `${r.namespace}/${r.name}` : r.name;
  const head =
    r.verb === 'copy'
      ? `copy ${r.resource.kind} into ${name} failed (${r.code} ${r.reason}): ${r.message}`
      : `${r.verb} ${r.resource.kind} ${name} rejected by the API server (${r.code} ${r.reason}): ${r.message}`;
  return r.hint ? `${head}; ${r.hint}` : head;
}
