/**
 * The Kubernetes API server's rules for label keys and values, annotation keys, and object names
 * (`k8s.io/apimachinery/pkg/util/validation`). Checking them at boot turns a rejected pod or PVC, found half an
 * hour later as a prepare timeout, into a config error that names the field.
 *
 * Each function returns the list of problems; an empty list means valid.
 */

const NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Longest label value and name part of a qualified name. */
export const MAX_LABEL_VALUE_LENGTH = 63;
/** Longest DNS-1123 subdomain (most object names, and the prefix of a qualified name). */
export const MAX_SUBDOMAIN_LENGTH = 253;
/** Longest DNS-1123 label (namespace names). */
export const MAX_DNS_LABEL_LENGTH = 63;
/** Largest total size of an object's annotations (keys plus values), in bytes. */
export const MAX_ANNOTATIONS_BYTES = 256 * 1024;

const NAME_PART_RULE =
  "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/** Problems of a qualified name (`prefix/name` or `name`): label keys, annotation keys, selector keys. */
export function qualifiedNameProblems(value: string): string[] {
  const parts = value.split('/');
  if (parts.length > 2) return ["a qualified name has at most one '/' (an optional DNS subdomain prefix and a name)"];
  const name = parts[parts.length - 1]!;
  const problems: string[] = [];
  if (parts.length === 2) {
    const prefix = parts[0]!;
    if (prefix === '') problems.push('the prefix part must not be empty');
    else problems.push(...dnsSubdomainProblems(prefix).map((problem) => `the prefix part ${problem}`));
  }
  if (name === '') problems.push('the name part must not be empty');
  else {
    if (name.length > MAX_LABEL_VALUE_LENGTH)
      problems.push(`the name part must be no more than ${MAX_LABEL_VALUE_LENGTH} characters`);
    if (!NAME_PART.test(name)) problems.push(`the name part ${NAME_PART_RULE}`);
  }
  return problems;
}

/** Problems of a label value (may be empty). */
export function labelValueProblems(value: string): string[] {
  const problems: string[] = [];
  if (value.length > MAX_LABEL_VALUE_LENGTH)
    problems.push(`a label value must be no more than ${MAX_LABEL_VALUE_LENGTH} characters`);
  if (value !== '' && !NAME_PART.test(value)) problems.push(`a label value ${NAME_PART_RULE}`);
  return problems;
}

/** Problems of a DNS-1123 subdomain: most object names (storage classes, priority classes, ConfigMaps, Leases). */
export function dnsSubdomainProblems(value: string): string[] {
  const problems: string[] = [];
  if (value.length > MAX_SUBDOMAIN_LENGTH) problems.push(`must be no more than ${MAX_SUBDOMAIN_LENGTH} characters`);
  if (!DNS1123_SUBDOMAIN.test(value))
    problems.push(
      "must be a lowercase RFC 1123 subdomain: lowercase alphanumeric characters, '-' or '.', starting and ending with an alphanumeric character",
    );
  return problems;
}

/** Problems of a DNS-1123 label: namespace names. */
export function dnsLabelProblems(value: string): string[] {
  const problems: string[] = [];
  if (value.length > MAX_DNS_LABEL_LENGTH) problems.push(`must be no more than ${MAX_DNS_LABEL_LENGTH} characters`);
  if (!DNS1123_LABEL.test(value))
    problems.push(
      "must be a lowercase RFC 1123 label: lowercase alphanumeric characters or '-', starting and ending with an alphanumeric character",
    );
  return problems;
}

/** Problems of a whole annotation map's size (the API server limits keys plus values together). */
export function annotationsSizeProblems(annotations: Readonly<Record<string, string>>): string[] {
  let bytes = 0;
  for (const [key, value] of Object.entries(annotations)) {
    bytes += Buffer.byteLength(key) + Buffer.byteLength(value);
  }
  return bytes > MAX_ANNOTATIONS_BYTES
    ? [`annotations total ${bytes} bytes; the API server accepts at most ${MAX_ANNOTATIONS_BYTES}`]
    : [];
}
