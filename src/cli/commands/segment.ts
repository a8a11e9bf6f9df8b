import type { Command } from '../command.js';
import { UserError } from '../command.js';

// Placeholder until the issue that owns this command lands.
const command: Command = {
  name: 'segment',
  summary: '',
  usage: 'blastwatch segment',
  async run() {
    throw new UserError('blastwatch segment is not implemented yet');
  },
};
export default command;
