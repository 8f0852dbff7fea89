import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { servable } from './served.js';

const GROUPS = new Set(['container', 'image', 'volume', 'network', 'system']);
const ok = (line: string): boolean => servable(line.split(' ').filter(Boolean), (w) => GROUPS.has(w));

describe('which berth command lines the CLI server runs', () => {
  it('runs the commands of containers, images, volumes and networks, interactive ones too', () => {
    for (const line of ['run -it busybox sh', 'run -i busybox cat', 'run --tty busybox', 'run -a stdin busybox', 'exec -it c sh', 'start -a c', 'run -dit busybox', 'attach c', 'container attach c', 'system prune', 'image prune', 'volume prune', 'network prune', 'run --rm busybox true', '-H unix:///x.sock ps -a', 'ps -a -q', 'images', 'container ls', 'image ls', 'volume create v', 'network ls', 'exec c ls', 'run -d -p 80:80 busybox', 'version', 'system info', 'logs c', 'logs -n 5 -t c', 'container logs c', 'stats --no-stream', 'container stats --no-stream c', 'system df', 'history busybox', 'diff c', 'commit c img', 'image prune -f', 'system prune --force', 'container prune -f', 'logs -f c', 'logs --follow c', 'events', 'system events', 'stats', 'container stats c']) {
      assert.ok(ok(line), line);
    }
  });

  it('leaves to Node what reads or writes local files, logs in, or is not known to be safe', () => {
    for (const line of ['build .', 'cp c:/x .', 'load', 'save busybox', 'export c', 'import x.tar', 'login', 'logout', 'image load', 'image save busybox', 'container cp c:/x .', '', '--help', 'image', 'nosuchcommand', 'constructor', 'toString', 'container constructor']) {
      assert.ok(!ok(line), line);
    }
  });
});
