import type { Command } from '../command.js';
import { UserError } from '../command.js';

// Placeholder until the issue that owns this command lands.
const command: Command = {
  name: 'preprocess-dataset',
  summary: '',
  usage: 'blastwatch preprocess-dataset',
  async run() {
    throw new UserError('blastwatch preprocess-dataset is not implemented yet');
  },
};
export default command;
