import type { Command } from '../command.js';
import { parseCommandArgs, UsageError, UserError } from '../command.js';
import { USER_ROLES, type UserRole } from '../../domain/roles.js';

/** Reads one line from a terminal without echoing it. */
function promptHidden(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(question);
    stdin.setRawMode(true);
    stdin.resume();
    stdin.setEncoding('utf8');
    let value = '';
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') {
          done();
          resolve(value);
          return;
        }
        if (ch === '\u0003') {
          done();
          reject(new UserError('cancelled', 130));
          return;
        }
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    const done = () => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
    };
    stdin.on('data', onData);
  });
}

async function readStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) text += String(chunk);
  // One password per run: the first line, without its line ending.
  return text.split(/\r?\n/)[0] ?? '';
}

/** One `http.users` entry on one line, ready to paste; `role` only when it was asked for. */
function usersEntry(name: string, role: UserRole | undefined, key: string, hash: string): string {
  return `- { name: ${JSON.stringify(name)}, ${role ? `role: ${role}, ` : ''}${key}: "${hash}" }\n`;
}

/**
 * A fresh API token and its hash. The token goes to stdout once and is never stored: the
 * config keeps only the hash, so a leaked config file does not hand out working tokens.
 */
async function printNewToken(name: string | undefined, role: UserRole | undefined): Promise<number> {
  const { hashPassword, newApiToken } = await import('../../runtime/password.js');
  const token = newApiToken();
  const hash = await hashPassword(token);
  process.stdout.write(`token: ${token}\n`);
  process.stdout.write(name ? usersEntry(name, role, 'api_token_hash', hash) : `api_token_hash: "${hash}"\n`);
  process.stderr.write(
    'Keep the token now (it is shown only this once and cannot be recovered from the hash); ' +
      'put only the hash in the config. Send it as "Authorization: Bearer <token>".\n',
  );
  return 0;
}

const command: Command = {
  name: 'hash-password',
  summary: 'make a password hash or a new API token for a dashboard user (http.users in the config)',
  usage: `usage: blastwatch hash-password [--name NAME] [--role ROLE] [--new-token]

Asks for a password twice (not echoed) and prints its scrypt hash, ready for http.users:
  http:
    users:
      - { name: dr-lee, role: reviewer, password_hash: "scrypt:..." }
When stdin is not a terminal, the first line of stdin is the password:
  printf '%s\\n' "$PASSWORD" | blastwatch hash-password --name dr-lee
  --name NAME   print a complete users entry for NAME
  --role ROLE   put role: ROLE (viewer, reviewer or admin) in that entry; without it the
                entry gets the default role, reviewer
  --new-token   instead of asking for a password, make a random API token and print it once
                ("token: bw_...") with its hash for api_token_hash:
                  blastwatch hash-password --new-token --name lims-bridge --role reviewer`,
  async run(argv) {
    const parsed = parseCommandArgs(argv, {
      options: { name: { type: 'string' }, role: { type: 'string' }, 'new-token': { type: 'boolean' } },
    });
    const { name, role } = parsed.values;
    if (name !== undefined && (name.length === 0 || name.length > 64))
      throw new UsageError('--name: 1 to 64 characters');
    if (role !== undefined && !(USER_ROLES as readonly string[]).includes(role))
      throw new UsageError(`--role: one of ${USER_ROLES.join(', ')}`);
    if (role !== undefined && name === undefined)
      throw new UsageError('--role goes into a users entry: give --name too');
    const entryRole = role as UserRole | undefined;
    if (parsed.values['new-token']) return printNewToken(name, entryRole);
    let password: string;
    if (process.stdin.isTTY) {
      password = await promptHidden('Password: ');
      const again = await promptHidden('Again: ');
      if (password !== again) throw new UserError('the two passwords differ; nothing printed');
    } else {
      password = await readStdin();
    }
    if (password.length < 8) throw new UserError('password too short: use at least 8 characters');
    const { hashPassword } = await import('../../runtime/password.js');
    const hash = await hashPassword(password);
    process.stdout.write(name ? usersEntry(name, entryRole, 'password_hash', hash) : `${hash}\n`);
    return 0;
  },
};
export default command;
