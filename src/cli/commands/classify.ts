import type { Command } from '../command.js';
import { UserError } from '../command.js';

// Placeholder until the issue that owns this command lands.
const command: Command = {
  name: 'classify',
  summary: '',
  usage: 'blastwatch classify',
  async run() {
    throw new UserError('blastwatch classify is not implemented yet');
  },
};
export default command;
