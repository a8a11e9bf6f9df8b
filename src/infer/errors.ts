/**
 * A problem with the model or the inference worker that the user can act on (missing model.json,
 * wrong file, hash mismatch, crashed worker). The message is one line and names the file or key.
 */
export class ModelError extends Error {
  override readonly name = 'ModelError';
}
