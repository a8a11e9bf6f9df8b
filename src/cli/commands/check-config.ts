import { stringify } from 'yaml';
import type { Command } from '../command.js';
import { parseCommandArgs, UsageError, UserError } from '../command.js';
import { checkConfigRules, ConfigError, loadConfig } from '../../config/load.js';

const command: Command = {
  name: 'check-config',
  summary: 'validate a config file (and environment overrides) and print the result',
  usage: `usage: blastwatch check-config [FILE] [--print]

Validates config/default.yaml merged with FILE (or $BLASTWATCH_CONFIG) and the BLASTWATCH_*
environment overrides. Exit 0 and "ok" when valid; exit 1 and one line naming the key otherwise.
  --print   also print the effective configuration (secrets masked)`,
  async run(argv) {
    const parsed = parseCommandArgs(argv, {
      allowPositionals: true,
      options: { print: { type: 'boolean' } },
    });
    if (parsed.positionals.length > 1) throw new UsageError('at most one config file');
    try {
      const loaded = loadConfig(parsed.positionals[0]);
      checkConfigRules(loaded.config);
      const env = loaded.envOverrides.length ? `; environment: ${loaded.envOverrides.join(', ')}` : '';
      process.stdout.write(`ok: ${loaded.files.join(' + ')}${env}\n`);
      if (parsed.values.print) {
        const shown = structuredClone(loaded.config);
        if (shown.mqtt.password) shown.mqtt.password = '***';
        if (shown.http.auth_token) shown.http.auth_token = '***';
        process.stdout.write(stringify(shown));
      }
      return 0;
    } catch (err) {
      if (err instanceof ConfigError) throw new UserError(err.message);
      throw err;
    }
  },
};
export default command;
