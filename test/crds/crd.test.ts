import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { NODE_OS_VALUES, PHASES } from '../../src/api/index.js';
import type {
  CSISnapshotSpec,
  DataMoveOperationProgress,
  DataUploadSpec,
  DataUploadStatus,
} from '../../src/api/index.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const OUR_CRD = join(REPO, 'crds', 'velero.io_datauploads.yaml');
const VELERO_CRD_FILE = 'velero.io_datauploads.v1.18.0.yaml';
const VELERO_CRDS_DIR = process.env.DUO_VELERO_CRDS_DIR ?? join(REPO, '..', 'shared', 'velero-crds');

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** Loads a file that holds exactly one YAML document (Velero's starts with `---`). */
function loadSingleDocument(path: string): JsonObject {
  const docs = parseAllDocuments(readFileSync(path, 'utf8'));
  assert.equal(docs.length, 1, `${path} must hold exactly one YAML document`);
  return docs[0]!.toJS() as JsonObject;
}

function loadOurCrd(): JsonObject {
  return loadSingleDocument(OUR_CRD);
}

/** Copies `value` without any string-valued `description` key, at any depth (a property named so is an object). */
function withoutDescriptions(value: Json): Json {
  if (Array.isArray(value)) return value.map(withoutDescriptions);
  if (value === null || typeof value !== 'object') return value;
  const copy: JsonObject = {};
  for (const [key, child] of Object.entries(value)) {
    if (key === 'description' && typeof child === 'string') continue;
    copy[key] = withoutDescriptions(child);
  }
  return copy;
}

/** The parts of a CRD that must equal Velero's: everything but descriptions and metadata annotations. */
function comparable(crd: JsonObject): Json {
  const metadata = { ...(crd.metadata as JsonObject) };
  delete metadata.annotations;
  return withoutDescriptions({ ...crd, metadata });
}

/** Every path where the two values differ, one readable line each, so a failure says what to fix. */
function differences(ours: Json | undefined, theirs: Json | undefined, path = '$'): string[] {
  if (isContainer(ours) && isContainer(theirs) && Array.isArray(ours) === Array.isArray(theirs)) {
    const keys = Array.isArray(ours)
      ? Array.from({ length: Math.max(ours.length, (theirs as Json[]).length) }, (_, index) => String(index))
      : [...new Set([...Object.keys(ours), ...Object.keys(theirs)])].sort();
    return keys.flatMap((key) =>
      differences(
        (ours as Record<string, Json>)[key],
        (theirs as Record<string, Json>)[key],
        Array.isArray(ours) ? `${path}[${key}]` : `${path}.${key}`,
      ),
    );
  }
  if (isDeepStrictEqual(ours, theirs)) return [];
  return [`${path}: ours ${JSON.stringify(ours) ?? '<missing>'}, Velero ${JSON.stringify(theirs) ?? '<missing>'}`];
}

function isContainer(value: Json | undefined): value is Json[] | JsonObject {
  return typeof value === 'object' && value !== null;
}

function version(crd: JsonObject): JsonObject {
  const versions = (crd.spec as JsonObject).versions as JsonObject[];
  assert.equal(versions.length, 1);
  return versions[0]!;
}

function schemaAt(crd: JsonObject, ...path: string[]): JsonObject {
  let node = (version(crd).schema as JsonObject).openAPIV3Schema as JsonObject;
  for (const name of path) {
    const properties = node.properties as JsonObject | undefined;
    assert.ok(properties?.[name], `the CRD schema has no property ${[...path].join('.')}`);
    node = properties[name] as JsonObject;
  }
  return node;
}

test('our CRD equals Velero v1.18 once descriptions and annotations are ignored', (t) => {
  const veleroPath = join(VELERO_CRDS_DIR, VELERO_CRD_FILE);
  if (!existsSync(veleroPath) && process.env.DUO_VELERO_CRDS_DIR === undefined) {
    t.skip(`Velero's CRD is not at ${veleroPath}; set DUO_VELERO_CRDS_DIR to its directory`);
    return;
  }
  const ours = comparable(loadOurCrd());
  const velero = comparable(loadSingleDocument(veleroPath));
  const diff = differences(ours, velero);
  assert.deepEqual(diff, [], `the CRD differs from Velero v1.18:\n${diff.join('\n')}`);
  assert.deepEqual(ours, velero);
});

test('the difference report names the path of a changed field', () => {
  const ours: Json = { a: { b: [1, { c: 'x' }] } };
  const theirs: Json = { a: { b: [1, { c: 'y', d: true }] } };
  assert.deepEqual(differences(ours, theirs), [
    '$.a.b[1].c: ours "x", Velero "y"',
    '$.a.b[1].d: ours <missing>, Velero true',
  ]);
  assert.deepEqual(differences({ x: 1, y: 2 }, { y: 2, x: 1 }), []);
});

test('the CRD says which Velero schema it matches and describes its fields in words', () => {
  const crd = loadOurCrd();
  const annotations = (crd.metadata as JsonObject).annotations as JsonObject;
  assert.equal(annotations['dataupload-operator/velero-schema-version'], 'v1.18.0');
  const undocumented = Object.entries(schemaAt(crd, 'status').properties as JsonObject)
    .filter(([, schema]) => typeof (schema as JsonObject).description !== 'string')
    .map(([name]) => name);
  assert.deepEqual(undocumented, []);
});

test('the crds kustomization lists the DataUpload CRD', () => {
  const kustomization = parse(readFileSync(join(REPO, 'crds', 'kustomization.yaml'), 'utf8')) as JsonObject;
  assert.equal(kustomization.kind, 'Kustomization');
  assert.deepEqual(kustomization.resources, ['velero.io_datauploads.yaml']);
});

test('the CRD is the namespaced datauploads.velero.io with a single served and stored v2alpha1', () => {
  const crd = loadOurCrd();
  assert.equal(crd.apiVersion, 'apiextensions.k8s.io/v1');
  assert.equal(crd.kind, 'CustomResourceDefinition');
  assert.equal((crd.metadata as JsonObject).name, 'datauploads.velero.io');
  const spec = crd.spec as JsonObject;
  assert.equal(spec.group, 'velero.io');
  assert.equal(spec.scope, 'Namespaced');
  assert.deepEqual(spec.names, {
    kind: 'DataUpload',
    listKind: 'DataUploadList',
    plural: 'datauploads',
    singular: 'dataupload',
  });
  const { name, served, storage } = version(crd);
  assert.deepEqual({ name, served, storage }, { name: 'v2alpha1', served: true, storage: true });
});

test('the CRD has no status subresource, because Velero writes status with whole-object updates', () => {
  assert.deepEqual(version(loadOurCrd()).subresources, {});
});

test('the printer columns are Velero v1.18 columns in the same order', () => {
  const columns = version(loadOurCrd()).additionalPrinterColumns as JsonObject[];
  const expected = [
    { name: 'Status', type: 'string', jsonPath: '.status.phase' },
    { name: 'Started', type: 'date', jsonPath: '.status.startTimestamp' },
    { name: 'Bytes Done', type: 'integer', format: 'int64', jsonPath: '.status.progress.bytesDone' },
    { name: 'Total Bytes', type: 'integer', format: 'int64', jsonPath: '.status.progress.totalBytes' },
    {
      name: 'Incremental Bytes',
      type: 'integer',
      format: 'int64',
      jsonPath: '.status.incrementalBytes',
      priority: 10,
    },
    { name: 'Storage Location', type: 'string', jsonPath: '.spec.backupStorageLocation' },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    { name: 'Node', type: 'string', jsonPath: '.status.node' },
  ];
  assert.deepEqual(withoutDescriptions(columns), expected);
  for (const column of columns)
    assert.equal(typeof column.description, 'string', `${JSON.stringify(column.name)} description`);
});

/** What the CRD must say about one field of a TypeScript interface. */
interface ExpectedField {
  type: 'string' | 'integer' | 'boolean' | 'object';
  format?: 'int64' | 'date-time';
  nullable?: true;
  enum?: readonly string[];
  /** `additionalProperties: {type: string}`: a map of strings. */
  stringMap?: true;
  /** In the object's `required` list; the type below makes this agree with the interface's optional marks. */
  required?: true;
}

/** A field is required in the CRD exactly when the interface does not mark it optional. */
type RequiredMark<T, K extends keyof T> =
  Record<never, never> extends Pick<T, K> ? { required?: never } : { required: true };

/** One entry per interface field, no more and no fewer: the compiler catches drift on the TypeScript side. */
type SchemaOf<T> = { [K in keyof Required<T>]: ExpectedField & RequiredMark<T, K> };

const specSchema: SchemaOf<DataUploadSpec> = {
  snapshotType: { type: 'string', required: true },
  csiSnapshot: { type: 'object', nullable: true },
  sourcePVC: { type: 'string', required: true },
  datamover: { type: 'string' },
  backupStorageLocation: { type: 'string', required: true },
  sourceNamespace: { type: 'string', required: true },
  dataMoverConfig: { type: 'object', nullable: true, stringMap: true },
  cancel: { type: 'boolean' },
  operationTimeout: { type: 'string', required: true },
};

const csiSnapshotSchema: SchemaOf<CSISnapshotSpec> = {
  volumeSnapshot: { type: 'string', required: true },
  storageClass: { type: 'string', required: true },
  snapshotClass: { type: 'string' },
  driver: { type: 'string' },
};

const statusSchema: SchemaOf<DataUploadStatus> = {
  phase: { type: 'string', enum: PHASES },
  path: { type: 'string' },
  snapshotID: { type: 'string' },
  dataMoverResult: { type: 'object', nullable: true, stringMap: true },
  message: { type: 'string' },
  startTimestamp: { type: 'string', format: 'date-time', nullable: true },
  completionTimestamp: { type: 'string', format: 'date-time', nullable: true },
  progress: { type: 'object' },
  node: { type: 'string' },
  nodeOS: { type: 'string', enum: NODE_OS_VALUES },
  acceptedByNode: { type: 'string' },
  acceptedTimestamp: { type: 'string', format: 'date-time', nullable: true },
  incrementalBytes: { type: 'integer', format: 'int64' },
};

const progressSchema: SchemaOf<DataMoveOperationProgress> = {
  totalBytes: { type: 'integer', format: 'int64' },
  bytesDone: { type: 'integer', format: 'int64' },
};

/** Reads back from a CRD property exactly what {@link ExpectedField} describes, and nothing else. */
function observedField(schema: JsonObject, required: boolean): ExpectedField {
  const field: ExpectedField = { type: schema.type as ExpectedField['type'] };
  if (schema.format !== undefined) field.format = schema.format as ExpectedField['format'];
  if (schema.nullable === true) field.nullable = true;
  if (schema.enum !== undefined) field.enum = schema.enum as string[];
  const additional = schema.additionalProperties as JsonObject | undefined;
  if (additional !== undefined) {
    assert.deepEqual(withoutDescriptions(additional), { type: 'string' });
    field.stringMap = true;
  }
  if (required) field.required = true;
  return field;
}

/** Asserts that the CRD object has exactly the expected properties, each with the expected type marks. */
function assertFieldsMatch(crdObject: JsonObject, expected: Record<string, ExpectedField>): void {
  assert.equal(crdObject.type, 'object');
  const properties = crdObject.properties as JsonObject;
  assert.deepEqual(
    Object.keys(properties).sort(),
    Object.keys(expected).sort(),
    'the CRD fields are the interface fields',
  );
  const required = new Set((crdObject.required as string[] | undefined) ?? []);
  for (const [name, want] of Object.entries(expected)) {
    assert.deepEqual(observedField(properties[name] as JsonObject, required.has(name)), want, `field ${name}`);
  }
}

test('the CRD spec has exactly the fields of DataUploadSpec, with their types and required marks', () => {
  assertFieldsMatch(schemaAt(loadOurCrd(), 'spec'), specSchema);
});

test('the CRD csiSnapshot has exactly the fields of CSISnapshotSpec', () => {
  assertFieldsMatch(schemaAt(loadOurCrd(), 'spec', 'csiSnapshot'), csiSnapshotSchema);
});

test('the CRD status has exactly the fields of DataUploadStatus, with the phase and nodeOS enums of src/api', () => {
  assertFieldsMatch(schemaAt(loadOurCrd(), 'status'), statusSchema);
});

test('the CRD progress has exactly the fields of the progress type', () => {
  assertFieldsMatch(schemaAt(loadOurCrd(), 'status', 'progress'), progressSchema);
});

test('the drift check fails when the CRD loses a field or changes a type', () => {
  const status = structuredClone(schemaAt(loadOurCrd(), 'status'));
  const properties = status.properties as JsonObject;
  delete properties.incrementalBytes;
  assert.throws(() => assertFieldsMatch(status, statusSchema), /the CRD fields are the interface fields/);
  const retyped = structuredClone(schemaAt(loadOurCrd(), 'status'));
  ((retyped.properties as JsonObject).node as JsonObject).type = 'integer';
  assert.throws(() => assertFieldsMatch(retyped, statusSchema), /field node/);
});

test('the field lists cannot drift from the interfaces without a compile error', () => {
  // These declarations only type-check (tsc runs in CI) while SchemaOf keeps its guarantees.
  // @ts-expect-error: leaving out an interface field does not compile
  const missing: SchemaOf<DataMoveOperationProgress> = { totalBytes: { type: 'integer', format: 'int64' } };
  const extra: SchemaOf<DataMoveOperationProgress> = {
    ...progressSchema,
    // @ts-expect-error: a field the interface does not have does not compile
    percent: { type: 'integer' },
  };
  // @ts-expect-error: a required field without its required mark does not compile
  const unmarked: SchemaOf<CSISnapshotSpec> = { ...csiSnapshotSchema, storageClass: { type: 'string' } };
  // @ts-expect-error: an optional field marked required does not compile
  const overMarked: SchemaOf<CSISnapshotSpec> = { ...csiSnapshotSchema, driver: { type: 'string', required: true } };
  assert.ok(missing && extra && unmarked && overMarked);
});
