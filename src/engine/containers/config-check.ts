/**
 * The fields of Docker's container.Config (create, commit) checked against their Go types, as
 * dockerd's JSON decoding refuses a wrong one: a 400 naming the field, not a TypeError in the
 * code that reads it later. Values are not judged here (a relative WorkingDir, a bad port):
 * that is for the code that uses them, with dockerd's words.
 */
import { checkObject, checkStringMap, integer, optionalBoolean, optionalString, optionalStringList } from '../../common/checks.js';

const STRINGS = ['Hostname', 'Domainname', 'User', 'Image', 'WorkingDir', 'MacAddress', 'StopSignal'];
const BOOLEANS = ['AttachStdin', 'AttachStdout', 'AttachStderr', 'Tty', 'OpenStdin', 'StdinOnce', 'ArgsEscaped', 'NetworkDisabled'];
/** []string, and moby's StrSlice (a plain string was made a list of it by the API layer). */
const STRING_LISTS = ['Cmd', 'Entrypoint', 'Shell', 'Env', 'OnBuild'];
/** map[string]struct{}. */
const SETS = ['ExposedPorts', 'Volumes'];

/** Refuses a config (or `field` of one, e.g. the body of a commit) whose fields have the wrong JSON type. */
export function checkConfigTypes(config: unknown, prefix = ''): void {
  if (config === undefined || config === null) return;
  checkObject(config, prefix || 'body');
  const c = config as Record<string, unknown>;
  for (const f of STRINGS) optionalString(c[f], prefix + f);
  for (const f of BOOLEANS) optionalBoolean(c[f], prefix + f);
  for (const f of STRING_LISTS) optionalStringList(c[f], prefix + f);
  checkStringMap(c.Labels, `${prefix}Labels`);
  for (const f of SETS) {
    if (c[f] === undefined || c[f] === null) continue;
    checkObject(c[f], prefix + f);
    for (const [key, value] of Object.entries(c[f] as object)) if (value !== null) checkObject(value, `${prefix}${f}[${JSON.stringify(key)}]`);
  }
  if (c.StopTimeout !== undefined && c.StopTimeout !== null) integer(c.StopTimeout, `${prefix}StopTimeout`);
  if (c.Healthcheck !== undefined && c.Healthcheck !== null) checkObject(c.Healthcheck, `${prefix}Healthcheck`);
}
