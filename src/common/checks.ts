/**
 * Checks of decoded JSON input against the Go types the Docker API declares (what dockerd's
 * json.Unmarshal refuses): a clear 400 naming the field, never a TypeError deeper in.
 */
import { InvalidArgumentError } from './errors.js';

export function checkObject(value: unknown, field: string): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidArgumentError('must be an object', field);
}

export function checkString(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new InvalidArgumentError('must be a string', field);
  return value;
}

export function optionalString(value: unknown, field: string): string | undefined {
  return value === undefined || value === null ? undefined : checkString(value, field);
}

export function optionalBoolean(value: unknown, field: string): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw new InvalidArgumentError('must be a boolean', field);
  return value;
}

export function optionalStringList(value: unknown, field: string): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) throw new InvalidArgumentError('must be a list of strings', field);
  value.forEach((item, index) => checkString(item, `${field}[${index}]`));
  return [...(value as string[])];
}

export function checkStringMap(value: unknown, field: string): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined;
  checkObject(value, field);
  for (const [key, item] of Object.entries(value as object)) checkString(item, `${field}[${JSON.stringify(key)}]`);
  return value as Record<string, string>;
}

export function integer(value: unknown, field: string, min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw new InvalidArgumentError('must be an integer', field);
  if (value < min || value > max) throw new InvalidArgumentError(`must be from ${min} to ${max}, got ${value}`, field);
  return value;
}
