import type { Command } from '../command.js';
import { UserError } from '../command.js';

// Placeholder until the issue that owns this command lands.
const command: Command = {
  name: 'run',
  summary: '',
  usage: 'blastwatch run',
  async run() {
    throw new UserError('blastwatch run is not implemented yet');
  },
};
export default command;
