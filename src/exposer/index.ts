/** The pure exposer builders: objects in, new objects out. The controller runs them step by step. */
export * from './affinity.js';
export * from './backup-pod.js';
export * from './backup-pvc.js';
export * from './backup-pvc-config.js';
export * from './copies.js';
export { ownerReferenceTo } from './objects.js';
export * from './pod-template.js';
export * from './snapshots.js';
