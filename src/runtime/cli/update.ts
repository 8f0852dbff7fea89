/** berth-oci update: change a container's cgroup resources (--resources FILE|-, as runc). */
import fs from 'node:fs';

import { InvalidArgumentError } from '../../common/errors.js';
import { cgroupManagerFromDescriptor } from '../cgroups/index.js';
import type { Resources } from '../spec/config.js';
import { parseVerbArgs, requireId, type VerbMain } from './context.js';

const main: VerbMain = async (args, ctx) => {
  const { values, positionals } = parseVerbArgs('update', args, {
    resources: { type: 'string', short: 'r' },
    memory: { type: 'string' },
    'pids-limit': { type: 'string' },
    'cpu-shares': { type: 'string' },
    'cpu-quota': { type: 'string' },
    'cpu-period': { type: 'string' },
    'cpuset-cpus': { type: 'string' },
    'cpuset-mems': { type: 'string' },
  });
  const id = requireId('update', positionals);
  let resources: Resources = {};
  if (values.resources) {
    try {
      resources = JSON.parse(fs.readFileSync(values.resources === '-' ? 0 : ctx.path(values.resources), 'utf8')) as Resources;
    } catch (err) {
      throw new InvalidArgumentError(`cannot read resources JSON: ${(err as Error).message}`, '--resources');
    }
  }
  const num = (flag: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new InvalidArgumentError(`not a number: ${v}`, flag);
    return n;
  };
  if (values.memory !== undefined) resources.memory = { ...resources.memory, limit: num('--memory', values.memory) };
  if (values['pids-limit'] !== undefined) resources.pids = { limit: num('--pids-limit', values['pids-limit'])! };
  const cpu = { shares: num('--cpu-shares', values['cpu-shares']), quota: num('--cpu-quota', values['cpu-quota']), period: num('--cpu-period', values['cpu-period']), cpus: values['cpuset-cpus'], mems: values['cpuset-mems'] };
  if (Object.values(cpu).some((v) => v !== undefined)) resources.cpu = { ...resources.cpu, ...Object.fromEntries(Object.entries(cpu).filter(([, v]) => v !== undefined)) };
  const record = ctx.runtime.store.load(id);
  if (!record.cgroup) throw new InvalidArgumentError('container has no cgroup to update', 'container-id');
  cgroupManagerFromDescriptor(record.cgroup).update(resources);
  return 0;
};
export default main;
