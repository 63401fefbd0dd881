export * from './names.js';
export * from './dataupload.js';
export type * from './kube.js';
