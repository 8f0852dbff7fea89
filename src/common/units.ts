/**
 * Docker's size, ulimit and boolean notations, shared by the CLI's flags, the daemon's options and the
 * engine's log options. go-units has two size parsers and Docker uses both: RAMInBytes (binary
 * units, for memory, /dev/shm and tmpfs sizes) and FromHumanSize (decimal units, for log sizes).
 */

const UNITS = 'kmgtp';

/** Go's strconv.ParseBool, as dockerd reads a boolean option: undefined if the text is not one. */
export function goParseBool(text: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
  return undefined;
}

/** go-units RAMInBytes: "64m" = 64 MiB; an optional "i" and "b". Undefined if it is not a size. */
export function ramInBytes(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?$/i.exec(text.trim());
  if (!m) return undefined;
  return Math.floor(Number(m[1]) * 1024 ** (m[2] ? UNITS.indexOf(m[2].toLowerCase()) + 1 : 0));
}

/** go-units FromHumanSize: decimal units ("1k" = 1000), an optional "i" and "b". Undefined if it is not a size. */
export function fromHumanSize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?) ?([kmgtp])?i?b?$/i.exec(text.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * 1000 ** (m[2] ? UNITS.indexOf(m[2].toLowerCase()) + 1 : 0));
}

/** "nofile=1024[:2048]" (--ulimit, --default-ulimit): the hard limit defaults to the soft one. Undefined if malformed. */
export function parseUlimitSpec(text: string): { Name: string; Soft: number; Hard: number } | undefined {
  const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(text);
  if (!m) return undefined;
  return { Name: m[1]!, Soft: Number(m[2]), Hard: Number(m[3] ?? m[2]) };
}
