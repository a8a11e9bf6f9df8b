import type { Command } from '../command.js';
import { UserError } from '../command.js';

// Placeholder until the issue that owns this command lands.
const command: Command = {
  name: 'demo',
  summary: '',
  usage: 'blastwatch demo',
  async run() {
    throw new UserError('blastwatch demo is not implemented yet');
  },
};
export default command;
