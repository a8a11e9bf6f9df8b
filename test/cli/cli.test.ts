import t from 'tap';
import { runCli } from '../helpers/cli.js';

t.test('help lists every subcommand and exits 0', async (t) => {
  const r = await runCli(['help']);
  t.equal(r.code, 0);
  for (const name of [
    'run',
    'check-config',
    'segment',
    'preprocess-dataset',
    'classify',
    'evaluate',
    'demo',
    'hash-password',
    'backup',
    'restore',
  ]) {
    t.match(r.stdout, new RegExp(`\\n  ${name} `), `help mentions ${name}`);
  }
});

t.test('an unknown command is a usage error with exit 2', async (t) => {
  const r = await runCli(['frobnicate']);
  t.equal(r.code, 2);
  t.match(r.stderr, /unknown command 'frobnicate'/);
});

t.test('an option a command does not know is a usage error with exit 2, for every command', async (t) => {
  const { commands } = await import('../../src/cli/registry.js');
  const names = Object.keys(commands);
  t.ok(names.length >= 10, names.join(' '));
  for (const name of names) {
    const r = await runCli([name, '--no-such-option']);
    t.equal(r.code, 2, `${name}: exit 2`);
    t.match(r.stderr, `blastwatch ${name}: Unknown option '--no-such-option'`, `${name}: names the option`);
  }
});
