import type { Command } from '../command.js';
import { UserError } from '../command.js';

// Placeholder until the issue that owns this command lands.
const command: Command = {
  name: 'check-config',
  summary: '',
  usage: 'blastwatch check-config',
  async run() {
    throw new UserError('blastwatch check-config is not implemented yet');
  },
};
export default command;
