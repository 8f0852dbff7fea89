#!/usr/bin/python3
"""docker-py (Debian's python3-docker 5) driving berthd's container lifecycle.

Run by test/integration/clients-dockerpy.test.ts with BERTH_SOCKET (the daemon's unix socket),
BERTH_PREFIX (a unique name prefix for everything this run creates) and optionally
BERTH_API_VERSION (docker-py 5's DockerClient asks the daemon by default; '1.41', '1.35'... pin one). Each step prints one
JSON line {"step", "ok", "error"?}; a failed step does not stop the others. Whatever it creates
is removed at the end, whatever happened.
"""
import json
import os
import sys
import threading
import time
import traceback

import docker
from docker.errors import APIError, ContainerError, ImageNotFound, NotFound
from docker.utils import version_gte

SOCKET = os.environ['BERTH_SOCKET']
PREFIX = os.environ.get('BERTH_PREFIX', 'dockerpy')
VERSION = os.environ.get('BERTH_API_VERSION') or None
ONLY = set(filter(None, os.environ.get('BERTH_STEPS', '').split(',')))

client = docker.DockerClient(base_url='unix://' + SOCKET, version=VERSION, timeout=60)
api = client.api
steps = []


def step(fn):
    steps.append(fn)
    return fn


def name(suffix):
    return f'{PREFIX}-{suffix}'


def check(cond, message):
    if not cond:
        raise AssertionError(message)


def eq(actual, expected, what):
    if actual != expected:
        raise AssertionError(f'{what}: expected {expected!r}, got {actual!r}')


def expect_error(cls, fn, status=None):
    try:
        fn()
    except cls as err:
        if status is not None:
            eq(err.response.status_code if err.response is not None else None, status, f'{cls.__name__} status')
        return err
    raise AssertionError(f'expected {cls.__name__}')


def gone(container_id):
    expect_error(NotFound, lambda: client.containers.get(container_id), 404)
    check(container_id not in [c.id for c in client.containers.list(all=True)], f'{container_id} is still listed')


@step
def version_ping_info():
    check(client.ping() is True, 'ping')
    v = client.version()
    check(v['ApiVersion'] >= '1.41', f'ApiVersion {v["ApiVersion"]}')
    check(v['Os'] == 'linux', 'Os')
    info = client.info()
    eq(info['OSType'], 'linux', 'OSType')
    check(isinstance(info['Containers'], int), 'Containers')
    eq(api._version, VERSION if VERSION not in (None, 'auto') else v['ApiVersion'], 'the API version in use')


@step
def images_list_get():
    tags = [t for i in client.images.list() for t in i.tags]
    check('busybox:latest' in tags, f'busybox:latest in {tags}')
    img = client.images.get('busybox')
    check(img.id.startswith('sha256:'), img.id)
    eq(img.tags, ['busybox:latest'], 'tags')
    check(img.attrs['Config']['Cmd'], 'image config')
    eq([i.id for i in client.images.list(name='busybox')], [img.id], 'images.list(name=)')
    eq(client.images.list(name='no-such-image-' + PREFIX), [], 'images.list(name=) of an unknown name')
    # ImageNotFound: docker-py picks it by the message's "No such image".
    expect_error(ImageNotFound, lambda: client.images.get('no-such-image-' + PREFIX), 404)


@step
def run_foreground_remove():
    out = client.containers.run('busybox', ['sh', '-c', 'echo hello; echo oops >&2'], remove=True, name=name('fg'))
    eq(out, b'hello\n', 'stdout of run')
    out = client.containers.run('busybox', ['sh', '-c', 'echo hello; echo oops >&2'], remove=True, stdout=False, stderr=True)
    eq(out, b'oops\n', 'stderr of run')
    expect_error(NotFound, lambda: client.containers.get(name('fg')), 404)
    err = expect_error(ContainerError, lambda: client.containers.run('busybox', ['sh', '-c', 'echo bad >&2; exit 3'], remove=True, name=name('fg-fail')))
    eq(err.exit_status, 3, 'ContainerError.exit_status')
    check(b'bad' in err.stderr, f'stderr {err.stderr!r}')
    gone(name('fg-fail'))
    # stream=True: a generator of the output as it comes.
    lines = list(client.containers.run('busybox', ['sh', '-c', 'for i in 1 2 3; do echo line $i; done'], remove=True, stream=True))
    eq(b''.join(lines), b'line 1\nline 2\nline 3\n', 'streamed run')


@step
def run_detached_remove():
    if not version_gte(api._version, '1.25'):
        return  # docker-py itself refuses detach with remove below 1.25 (no AutoRemove there)
    # It lives a moment: an AutoRemove container that is already gone answers wait with 404
    # (so does dockerd's, but its exit and removal take longer than docker-py's next request).
    c = client.containers.run('busybox', ['sh', '-c', 'sleep 0.5; echo bye; exit 0'], detach=True, remove=True, name=name('autorm'))
    eq(c.wait(timeout=30)['StatusCode'], 0, 'exit status')
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            client.containers.get(c.id)
            time.sleep(0.05)
        except NotFound:
            break
    gone(c.id)


TICKER = 'trap "echo bye; exit 0" TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done'


@step
def lifecycle():
    c = client.containers.run('busybox', ['sh', '-c', TICKER], detach=True, name=name('ticker'), labels={'suite': PREFIX})
    try:
        eq(c.status, 'created', 'status of the object run returns')
        c.reload()
        eq(c.status, 'running', 'status after reload')
        eq(c.name, name('ticker'), 'name')
        eq(c.labels['suite'], PREFIX, 'labels (merged with the image labels, as in Docker)')
        check(c.attrs['State']['Pid'] > 0, 'pid')
        eq(c.image.tags, ['busybox:latest'], 'image')
        # A stopped one with the same label: listed only with all=True (docker-py sends limit=-1).
        stopped = client.containers.create('busybox', ['true'], name=name('stopped'), labels={'suite': PREFIX})
        try:
            listed = client.containers.list(filters={'label': f'suite={PREFIX}'})
            eq([x.id for x in listed], [c.id], 'list with a label filter')
            eq(sorted(x.id for x in client.containers.list(all=True, filters={'label': f'suite={PREFIX}'})), sorted([c.id, stopped.id]), 'all=True')
            eq(len(client.containers.list(all=False, limit=1, filters={'label': f'suite={PREFIX}'})), 1, 'a limit lists stopped ones too')
        finally:
            stopped.remove()
        eq([x.id for x in client.containers.list(filters={'name': name('ticker'), 'status': 'running'})], [c.id], 'list by name and status')
        eq(client.containers.list(filters={'name': name('ticker'), 'status': 'exited'}), [], 'list by status')

        # logs: not streamed, then streamed with follow (reads new lines as they come).
        deadline = time.time() + 10
        while b'tick 2' not in c.logs() and time.time() < deadline:
            time.sleep(0.1)
        logs = c.logs()
        check(logs.startswith(b'tick 0\ntick 1\n'), f'logs {logs[:40]!r}')
        eq(c.logs(tail=1).count(b'\n'), 1, 'tail=1')
        check(c.logs(stdout=False, stderr=True) == b'', 'no stderr')
        stream = c.logs(stream=True, follow=True, tail=0)
        got = [next(stream) for _ in range(2)]
        check(all(g.startswith(b'tick ') for g in got), f'followed {got!r}')
        stream.close()

        # attach (stream): the output from now on, demultiplexed.
        att = c.attach(stream=True, logs=False)
        first = next(att)
        check(first.startswith(b'tick '), f'attached {first!r}')
        att.close()

        c.stop(timeout=5)
        c.reload()
        eq((c.status, c.attrs['State']['ExitCode']), ('exited', 0), 'after stop')
        check(c.logs(tail=1) == b'bye\n', 'the trap ran')
        eq(c.wait()['StatusCode'], 0, 'wait of a stopped container')

        c.start()
        c.reload()
        eq(c.status, 'running', 'after start')
        pid1 = c.attrs['State']['Pid']
        c.restart(timeout=2)
        c.reload()
        check(c.status == 'running' and c.attrs['State']['Pid'] != pid1, 'restart gives a new PID 1')

        c.pause()
        c.reload()
        eq(c.status, 'paused', 'after pause')
        err = expect_error(APIError, lambda: c.pause(), 409)
        check('already paused' in str(err.explanation), err.explanation)
        c.unpause()
        c.reload()
        eq(c.status, 'running', 'after unpause')

        c.rename(name('renamed'))
        c.reload()
        eq(c.name, name('renamed'), 'renamed')
        expect_error(NotFound, lambda: client.containers.get(name('ticker')), 404)

        err = expect_error(APIError, lambda: c.remove(), 409)
        check('running' in str(err.explanation), err.explanation)

        c.kill()
        eq(c.wait(timeout=30)['StatusCode'], 137, 'killed')
        c.reload()
        eq(c.status, 'exited', 'after kill')
        expect_error(APIError, lambda: c.kill(), 409)
        before = c.logs()
        c.start()
        # SIGTERM only once the shell has set its trap: PID 1 ignores a signal it has no handler
        # for, and a fast start leaves the signal time to arrive first.
        deadline = time.time() + 10
        while time.time() < deadline:
            now = c.logs()
            if now.count(b'tick 0\n') > before.count(b'tick 0\n') or (len(now) < len(before) and b'tick 0\n' in now):
                break
            time.sleep(0.05)
        c.kill(signal='SIGTERM')
        eq(c.wait(timeout=30)['StatusCode'], 0, 'SIGTERM ran the trap')
        expect_error(APIError, lambda: api.kill(c.id, signal='SIGNOPE'), None)
    finally:
        c.remove(force=True)
    gone(c.id)


@step
def wait_exit_status():
    c = client.containers.run('busybox', ['sh', '-c', 'sleep 0.3; exit 7'], detach=True, name=name('waiter'))
    try:
        r = c.wait(timeout=30)
        eq(r['StatusCode'], 7, 'wait')
        if version_gte(api._version, '1.30'):
            # Error in the body and the condition parameter came with 1.30 (docker-py refuses it below).
            check('Error' in r, f'wait body {r}')
            eq(c.wait(condition='not-running')['StatusCode'], 7, 'wait not-running on an exited container')
        else:
            eq(set(r), {'StatusCode'}, 'the wait body before 1.30')
    finally:
        c.remove(v=True)
    gone(c.id)


@step
def exec_stream():
    # A quick command's output, streamed: it must not come in the same read as the 101 headers,
    # which docker-py reads buffered before it takes the raw socket (that output was lost).
    c = client.containers.run('busybox', ['sleep', '60'], detach=True, name=name('execstream'), network_mode='none')
    try:
        for i in range(5):
            r = c.exec_run(['sh', '-c', f'echo {i}; echo done'], stream=True)
            eq(b''.join(r.output), f'{i}\ndone\n'.encode(), f'streamed exec {i}')
        out, err = c.exec_run(['sh', '-c', 'echo o; echo e >&2'], demux=True).output
        eq((out, err), (b'o\n', b'e\n'), 'exec demultiplexed')
    finally:
        c.remove(force=True)
    gone(c.id)


@step
def attach_before_start():
    c = client.containers.create('busybox', ['sh', '-c', 'echo one; sleep 0.2; echo two >&2; sleep 0.2; echo three'], name=name('attach'))
    try:
        sock_out = []

        att = c.attach(stream=True, stdout=True, stderr=True, logs=True)
        t = threading.Thread(target=lambda: sock_out.extend(att))
        t.start()
        time.sleep(0.2)
        c.start()
        t.join(30)
        check(not t.is_alive(), 'attach stream ended at exit')
        eq(b''.join(sock_out), b'one\ntwo\nthree\n', 'attached output')
        eq(c.wait()['StatusCode'], 0, 'exit')
        # demux: stdout and stderr apart.
        out, err = c.attach(stream=False, logs=True, demux=True)
        eq((out, err), (b'one\nthree\n', b'two\n'), 'logs through attach, demultiplexed')
    finally:
        c.remove(force=True)
    gone(c.id)


@step
def volumes():
    v = client.volumes.create(name=name('vol'), labels={'suite': PREFIX})
    try:
        eq(v.name, name('vol'), 'name')
        eq(v.attrs['Driver'], 'local', 'driver')
        check(v.attrs['Mountpoint'].endswith('/_data'), v.attrs['Mountpoint'])
        eq([x.name for x in client.volumes.list(filters={'label': f'suite={PREFIX}'})], [name('vol')], 'list with a label filter')
        eq(client.volumes.get(name('vol')).id, name('vol'), 'get')
        out = client.containers.run('busybox', ['sh', '-c', 'echo kept > /data/f; cat /data/f'], volumes={name('vol'): {'bind': '/data', 'mode': 'rw'}}, remove=True)
        eq(out, b'kept\n', 'volume mounted')
        out = client.containers.run('busybox', ['cat', '/data/f'], volumes=[f'{name("vol")}:/data:ro'], remove=True)
        eq(out, b'kept\n', 'volume content outlives the container')
        anon = client.volumes.create()
        check(len(anon.name) == 64, anon.name)
        anon.remove()
    finally:
        v.remove(force=True) if version_gte(api._version, '1.25') else v.remove()
    expect_error(NotFound, lambda: client.volumes.get(name('vol')), 404)
    expect_error(NotFound, lambda: client.volumes.get(name('vol')).remove(), 404)
    check(name('vol') not in [x.name for x in client.volumes.list()], 'volume listed after remove')


@step
def prune():
    if not version_gte(api._version, '1.25'):
        return  # docker-py refuses prune below 1.25, where it did not exist
    label = {'prune': PREFIX}
    a = client.containers.create('busybox', ['true'], labels=label)
    b = client.containers.run('busybox', ['true'], labels=label, detach=True)
    b.wait()
    keep = client.containers.create('busybox', ['true'])
    running = client.containers.run('busybox', ['sleep', '100'], labels=label, detach=True)
    try:
        r = client.containers.prune(filters={'label': f'prune={PREFIX}'})
        eq(sorted(r['ContainersDeleted'] or []), sorted([a.id, b.id]), 'pruned')
        check(isinstance(r['SpaceReclaimed'], int), 'SpaceReclaimed')
        gone(a.id)
        gone(b.id)
        client.containers.get(keep.id)
        client.containers.get(running.id)
    finally:
        running.remove(force=True)
        keep.remove()
    gone(running.id)


@step
def events_until():
    since = int(time.time()) - 1
    client.containers.run('busybox', ['true'], remove=True, name=name('evented'))
    until = int(time.time()) + 1
    t0 = time.time()
    events = list(client.events(since=since, until=until, filters={'container': name('evented')}, decode=True))
    check(time.time() - t0 < 5, 'events with until returns')
    actions = [e['Action'] for e in events]
    for a in ('create', 'start', 'die', 'destroy'):
        check(a in actions, f'{a} in {actions}')
    e = events[0]
    eq((e['Type'], e['Actor']['Attributes']['name'], e['status'], e['from']), ('container', name('evented'), 'create', 'busybox'), 'event fields')
    check(isinstance(e['time'], int) and isinstance(e['timeNano'], int), 'times')
    # A live stream: an event that happens while it is open arrives, then close() ends it.
    live = client.events(decode=True, filters={'type': 'volume'})
    got = []
    t = threading.Thread(target=lambda: got.append(next(live)))
    t.start()
    time.sleep(0.3)
    client.volumes.create(name=name('evvol')).remove()
    t.join(10)
    live.close()
    check(got and got[0]['Action'] == 'create' and got[0]['Actor']['ID'] == name('evvol'), f'live event {got}')


@step
def errors():
    err = expect_error(NotFound, lambda: client.containers.get('no-such-container'), 404)
    check('No such container: no-such-container' in str(err.explanation), err.explanation)
    expect_error(NotFound, lambda: api.stop('no-such-container'), 404)
    expect_error(NotFound, lambda: api.remove_container('no-such-container'), 404)
    expect_error(ImageNotFound, lambda: client.containers.create('no-such-image-' + PREFIX, ['true']), 404)
    c = client.containers.create('busybox', ['true'], name=name('taken'))
    try:
        err = expect_error(APIError, lambda: client.containers.create('busybox', ['true'], name=name('taken')), 409)
        check(err.is_client_error() and 'already in use' in str(err.explanation), err.explanation)
        err = expect_error(APIError, lambda: api.kill(c.id), 409)
        check('is not running' in str(err.explanation), err.explanation)
        err = expect_error(APIError, lambda: api.create_container('busybox', ['true'], host_config=api.create_host_config(restart_policy={'Name': 'bogus'})), 400)
        check(err.is_client_error(), 'a 400 is a client error')
        err = expect_error(APIError, lambda: api.logs(c.id, stdout=False, stderr=False), 400)
    finally:
        c.remove()
    gone(c.id)


def main():
    failures = 0
    for fn in steps:
        if ONLY and fn.__name__ not in ONLY:
            continue
        t0 = time.time()
        try:
            fn()
            print(json.dumps({'step': fn.__name__, 'ok': True, 'ms': int((time.time() - t0) * 1000)}), flush=True)
        except Exception as err:  # noqa: BLE001: every failure is reported, the run goes on
            failures += 1
            print(json.dumps({'step': fn.__name__, 'ok': False, 'error': f'{type(err).__name__}: {err}', 'trace': traceback.format_exc()}), flush=True)
    # Whatever a failed step left behind.
    for c in client.containers.list(all=True):
        if c.name.startswith(PREFIX) or c.labels.get('suite') == PREFIX or c.labels.get('prune') == PREFIX:
            try:
                c.remove(force=True)
            except APIError:
                pass
    for v in client.volumes.list():
        if v.name.startswith(PREFIX):
            try:
                v.remove(force=True)
            except APIError:
                pass
    sys.exit(1 if failures else 0)


if __name__ == '__main__':
    main()
