/**
 * A validator of one MQTT payload schema in schemas/mqtt (JSON Schema 2020-12 with formats), as
 * a lab system would check what blastwatch publishes.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void;
const ajv = new Ajv2020({ allErrors: true, strict: false });
addFormats(ajv);

export function mqttSchemaValidator(name: 'result' | 'alert' | 'health' | 'specimen'): ValidateFunction {
  const file = fileURLToPath(new URL(`../../schemas/mqtt/${name}.schema.json`, import.meta.url));
  return ajv.compile(JSON.parse(readFileSync(file, 'utf8')) as object);
}
