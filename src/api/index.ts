export * from './names.js';
export * from './dataupload.js';
export type * from './kube.js';
export * from './duration.js';
export * from './quantity.js';
