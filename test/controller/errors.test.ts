import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeRefusal, isPermanentApiError, refusalOf } from '../../src/controller/errors.js';
import { invalidSpecReason } from '../../src/controller/validate.js';
import { KubeApiError, Resources } from '../../src/runtime/kube-api.js';
import { newDataUpload } from './world.js';

const err = (code: number, reason: string, message: string) => new KubeApiError({ code, reason, message });

const cases: [string, KubeApiError | Error, boolean][] = [
  [
    'a label value over 63 characters (422 Invalid)',
    err(
      422,
      'Invalid',
      'Pod "x" is invalid: metadata.labels: Invalid value: "aaa": must be no more than 63 characters',
    ),
    true,
  ],
  ['a malformed request (400)', err(400, 'BadRequest', 'the body of the request was in an unknown format'), true],
  ['a request too large (413)', err(413, 'RequestEntityTooLarge', 'Request entity too large'), true],
  [
    'PodSecurity admission (403)',
    err(403, 'Forbidden', 'pods "x" is forbidden: violates PodSecurity "baseline:latest": seLinuxOptions'),
    true,
  ],
  [
    'a validating webhook (403)',
    err(403, 'Forbidden', 'admission webhook "policy.example.com" denied the request: no root pods'),
    true,
  ],
  [
    'a LimitRange (403)',
    err(403, 'Forbidden', 'pods "x" is forbidden: maximum cpu usage per Container is 1, but limit is 2'),
    true,
  ],
  [
    'RBAC, which an administrator can still grant (403)',
    err(
      403,
      'Forbidden',
      'pods is forbidden: User "system:serviceaccount:velero:dataupload-operator" cannot create resource "pods" in API group "" in the namespace "velero"',
    ),
    false,
  ],
  [
    'a ResourceQuota, which frees up as other pods finish (403)',
    err(
      403,
      'Forbidden',
      'pods "x" is forbidden: exceeded quota: compute, requested: cpu=1, used: cpu=4, limited: cpu=4',
    ),
    false,
  ],
  [
    'a namespace being terminated (403)',
    err(403, 'Forbidden', 'unable to create new content in namespace velero because it is being terminated'),
    false,
  ],
  ['a conflict (409)', err(409, 'Conflict', 'the object has been modified'), false],
  ['throttling (429)', err(429, 'TooManyRequests', 'slow down'), false],
  ['an unreachable webhook (500)', err(500, 'InternalError', 'failed calling webhook: connection refused'), false],
  ['a timeout (504)', err(504, 'Timeout', 'the server was unable to return a response in the time allotted'), false],
  ['no answer at all (0)', err(0, 'Unknown', 'socket hang up'), false],
  ['a token being rotated (401)', err(401, 'Unauthorized', 'Unauthorized'), false],
  ['an error that is not from the API server', new Error('boom'), false],
];

for (const [why, error, permanent] of cases) {
  test(`${why} is ${permanent ? 'permanent: the DataUpload fails at once' : 'transient: backoff'}`, () => {
    assert.equal(isPermanentApiError(error), permanent);
  });
}

test('a refusal names the object and quotes the API server', () => {
  const action = {
    type: 'create' as const,
    resource: Resources.pods,
    object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'du-1', namespace: 'velero' } },
  };
  const refusal = refusalOf(action, err(403, 'Forbidden', 'pods "du-1" is forbidden: violates PodSecurity'));
  assert.ok(refusal);
  assert.equal(
    describeRefusal(refusal),
    'create Pod velero/du-1 rejected by the API server (403 Forbidden): pods "du-1" is forbidden: violates PodSecurity',
  );
  assert.equal(refusalOf(action, err(500, 'InternalError', 'etcd')), undefined, 'transient errors are no refusal');
});

test('a refused write to the DataUpload itself is no refusal: failing it would need that same write', () => {
  const action = { type: 'patchDataUpload' as const, patch: { status: { phase: 'Accepted' } } };
  assert.equal(refusalOf(action, err(422, 'Invalid', 'status.phase: Unsupported value')), undefined);
});

test('a DataUpload name too long to be a label value fails before anything is created, naming the field', () => {
  const du = newDataUpload();
  du.metadata.name = 'n'.repeat(100);
  assert.equal(
    invalidSpecReason(du),
    'metadata.name: 100 characters is too long to expose; the backup pod is labelled velero.io/data-upload=<name>, ' +
      'and a label value can be at most 63 characters',
  );
  du.metadata.name = 'n'.repeat(63);
  assert.equal(invalidSpecReason(du), undefined);
});
