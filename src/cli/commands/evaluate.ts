import type { Command } from '../command.js';
import { UserError } from '../command.js';

// Placeholder until the issue that owns this command lands.
const command: Command = {
  name: 'evaluate',
  summary: '',
  usage: 'blastwatch evaluate',
  async run() {
    throw new UserError('blastwatch evaluate is not implemented yet');
  },
};
export default command;
