import assert from 'node:assert/strict';
import { test } from 'node:test';

import { GO_TYPE, goString, parse, render, TemplateError, TemplateExecError, TemplateParseError } from './template.js';

const data = {
  ID: 'abc',
  Name: '/web',
  State: { Status: 'running', Pid: 42, Running: true, Paused: false },
  Config: { Env: ['A=1', 'B=2'], Labels: { z: '1', a: 'x' }, Cmd: null },
  Mounts: [{ Source: '/s1', Destination: '/d1' }, { Source: '/s2', Destination: '/d2' }],
};

test('fields, nested fields, json, and Go printing of values', () => {
  assert.equal(render('{{.ID}} {{.State.Status}} {{.State.Pid}}', data), 'abc running 42');
  assert.equal(render('{{json .Config.Env}}', data), '["A=1","B=2"]');
  assert.equal(render('{{.Config.Env}}', data), '[A=1 B=2]');
  assert.equal(render('{{.Config.Labels}}', data), 'map[a:x z:1]');
  assert.equal(render('{{.Config.Cmd}}', data), '<nil>');
  assert.equal(render('{{.Missing}}', data), '<no value>');
  assert.equal(render('{{json .}}', { a: 1 }), '{"a":1}');
  assert.equal(goString(true), 'true');
});

test('pipes and functions', () => {
  assert.equal(render('{{.Name | upper}}', data), '/WEB');
  assert.equal(render('{{upper .Name}} {{lower "AB"}} {{title "hello world"}}', data), '/WEB ab Hello World');
  assert.equal(render('{{join .Config.Env ","}}', data), 'A=1,B=2');
  assert.equal(render('{{truncate .ID 2}}', data), 'ab');
  assert.equal(render('{{index .Config.Labels "a"}}', data), 'x');
  assert.equal(render('{{len .Mounts}}', data), '2');
  assert.equal(render('{{printf "%s-%d" .ID .State.Pid}}', data), 'abc-42');
  assert.equal(render('{{.Config.Env | json}}', data), '["A=1","B=2"]');
  assert.equal(render('{{(index .Mounts 1).Source}}', data), '/s2');
  assert.equal(render('{{split "a:b" ":"}}', data), '[a b]');
});

test('range, if/else, with, variables and trimming', () => {
  assert.equal(render('{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}', data), '/s1:/d1 /s2:/d2 ');
  assert.equal(render('{{range $i, $m := .Mounts}}{{$i}}={{$m.Destination}};{{end}}', data), '0=/d1;1=/d2;');
  assert.equal(render('{{range $k, $v := .Config.Labels}}{{$k}}={{$v}} {{end}}', data), 'a=x z=1 ');
  assert.equal(render('{{range .Config.Cmd}}x{{else}}empty{{end}}', data), 'empty');
  assert.equal(render('{{if .State.Running}}up{{else}}down{{end}}', data), 'up');
  assert.equal(render('{{if .State.Paused}}p{{else if .State.Running}}r{{else}}s{{end}}', data), 'r');
  assert.equal(render('{{if eq .State.Status "running"}}yes{{end}}', data), 'yes');
  assert.equal(render('{{if and .State.Running (not .State.Paused)}}ok{{end}}', data), 'ok');
  assert.equal(render('{{with .State}}{{.Pid}}{{end}}', data), '42');
  assert.equal(render('{{$n := .Name}}{{$n}}', data), '/web');
  assert.equal(render('a  {{- .ID -}}  b', data), 'aabcb');
  assert.equal(render('{{range .Mounts}}{{$.ID}}{{end}}', data), 'abcabc');
});

test('errors name the problem', () => {
  assert.throws(() => render('{{.ID', data), TemplateError);
  assert.throws(() => render('{{nosuchfn .ID}}', data), /function "nosuchfn" not defined/);
  assert.throws(() => render('{{if .ID}}x', data), /unexpected EOF/);
  assert.throws(() => render('{{end}}', data), TemplateError);
  assert.throws(() => render('{{.ID.X.Y}}', data), TemplateError);
});

test("errors in Go's words: parse errors with their line, execution errors with line, column and node", () => {
  assert.throws(() => render('a\n{{.ID}}\n{{', data), new TemplateParseError('template: :3: unclosed action'));
  assert.throws(() => render('{{nofunc .ID}}', data), new TemplateParseError('template: :1: function "nofunc" not defined'));
  assert.throws(() => render('{{if .ID}}x', data), new TemplateParseError('template: :1: unexpected EOF'));
  // A chain is placed at its second field, as Go's parser places it.
  assert.throws(() => render('{{.ID.X}}', data), new TemplateExecError('template: :1:5: executing "" at <.ID.X>: can\'t evaluate field X in type string'));
  assert.throws(() => render('x\n  {{.State.Pid.Y}}', data), { message: /^template: :2:10: executing "" at <\.State\.Pid\.Y>: can.t evaluate field Y in type number$/ });
});

test('strict fields: a row lacks a field as a formatter context does; methods take arguments', () => {
  const row = { Name: 'a' };
  Object.defineProperty(row, 'Label', { value: (k: unknown) => (k === 'x' ? 'y' : '') });
  Object.defineProperty(row, GO_TYPE, { value: '*formatter.ContainerContext' });
  assert.equal(parse('{{.Name}} {{.Label "x"}}|{{.Label "z"}}', { strictFields: true }).execute(row), 'a y|');
  assert.throws(() => parse('{{.Nope}}', { strictFields: true }).execute(row), new TemplateExecError('template: :1:2: executing "" at <.Nope>: can\'t evaluate field Nope in type *formatter.ContainerContext'));
  // Without strictness (inspect of API JSON, which leaves empty fields out), it is "<no value>".
  assert.equal(render('{{.Nope}}', row), '<no value>');
  assert.equal(render('{{index .Config.Labels "nosuch"}}', data), '');
});
