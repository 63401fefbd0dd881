/**
 * Diagnostics of the expose path: what the controller turns into Events, `status.message` and the `diagnose` report.
 */
export * from './expose.js';
export * from './reasons.js';
export type { DiagnosedObject, WarningSummary } from './events.js';
export { CAUSE_MAX_BYTES, EVENT_NOTE_MAX_BYTES, truncateUtf8, singleLine } from './text.js';
export * from './collect.js';
