import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { ZodError } from 'zod';
import { configSchema, type Config } from './schema.js';

/** config/default.yaml, shipped with the package: the documented defaults are the real defaults. */
export const DEFAULT_CONFIG_PATH = fileURLToPath(new URL('../../config/default.yaml', import.meta.url));
/** The model bundled in the package, used when model.dir is null. */
export const BUNDLED_MODEL_DIR = fileURLToPath(new URL('../../models', import.meta.url));

/** A config problem the user can fix; the message names the file and the key path. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * The configuration after loading: the keys whose null means "derive it" (device_id, model.dir,
 * mqtt.client_id, mqtt.topic_prefix) hold the derived value, so no consumer has to cast.
 */
export type ResolvedConfig = Omit<Config, 'device_id' | 'model' | 'mqtt'> & {
  device_id: string;
  model: Config['model'] & { dir: string };
  mqtt: Config['mqtt'] & { client_id: string; topic_prefix: string };
};

/** Where each value came from, for `check-config` and the start-up log. */
export interface LoadedConfig {
  config: ResolvedConfig;
  /** Files merged, in order (default first). */
  files: string[];
  /** Environment variables that overrode a value. */
  envOverrides: string[];
}

type Tree = Record<string, unknown>;

const isTree = (v: unknown): v is Tree => typeof v === 'object' && v !== null && !Array.isArray(v);

function readYaml(path: string): Tree {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : String(code);
    throw new ConfigError(`cannot read config file ${path}: ${why}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    const detail = err instanceof YAMLParseError ? err.message.split('\n')[0] : String(err);
    throw new ConfigError(`${path}: not valid YAML: ${detail}`);
  }
  if (doc === null || doc === undefined) return {};
  if (!isTree(doc)) throw new ConfigError(`${path}: expected a mapping of keys at the top level`);
  return doc;
}

/** Deep merge: mappings merge key by key, everything else (lists too) is replaced. */
function merge(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const prev = out[key];
    out[key] = isTree(prev) && isTree(value) ? merge(prev, value) : value;
  }
  return out;
}

function setPath(tree: Tree, path: string[], value: unknown): void {
  let node = tree;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (!isTree(next)) node[key] = {};
    node = node[key] as Tree;
  }
  node[path[path.length - 1] as string] = value;
}

const asString = (v: string): unknown => v;
const asInt = (v: string): unknown => (/^-?\d+$/.test(v.trim()) ? Number(v) : v);
const asList = (v: string): unknown =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/** The environment variables a deployment sets, and the key each overrides. */
export const ENV_OVERRIDES: Record<string, { path: string[]; parse: (v: string) => unknown }> = {
  BLASTWATCH_DEVICE_ID: { path: ['device_id'], parse: asString },
  BLASTWATCH_LOG_LEVEL: { path: ['log', 'level'], parse: asString },
  BLASTWATCH_CAPTURE_DIR: { path: ['capture', 'dir'], parse: asString },
  BLASTWATCH_DATA_DIR: { path: ['data', 'dir'], parse: asString },
  BLASTWATCH_MODEL_DIR: { path: ['model', 'dir'], parse: asString },
  BLASTWATCH_EXECUTION_PROVIDERS: { path: ['model', 'execution_providers'], parse: asList },
  BLASTWATCH_MQTT_URL: { path: ['mqtt', 'url'], parse: asString },
  BLASTWATCH_MQTT_USERNAME: { path: ['mqtt', 'username'], parse: asString },
  BLASTWATCH_MQTT_PASSWORD: { path: ['mqtt', 'password'], parse: asString },
  BLASTWATCH_HTTP_HOST: { path: ['http', 'host'], parse: asString },
  BLASTWATCH_HTTP_PORT: { path: ['http', 'port'], parse: asInt },
  BLASTWATCH_AUTH_TOKEN: { path: ['http', 'auth_token'], parse: asString },
  BLASTWATCH_LIS_LAB_NAME: { path: ['lis', 'lab_name'], parse: asString },
  BLASTWATCH_LIS_MLLP_HOST: { path: ['lis', 'mllp', 'host'], parse: asString },
  BLASTWATCH_LIS_MLLP_PORT: { path: ['lis', 'mllp', 'port'], parse: asInt },
  BLASTWATCH_LIS_FILE_DIR: { path: ['lis', 'file_dir'], parse: asString },
  BLASTWATCH_LIS_FHIR_BASE_URL: { path: ['lis', 'fhir', 'base_url'], parse: asString },
  BLASTWATCH_LIS_FHIR_TOKEN: { path: ['lis', 'fhir', 'token'], parse: asString },
  BLASTWATCH_LIS_FHIR_DIR: { path: ['lis', 'fhir_dir'], parse: asString },
};

/** One line per problem: `capture.dir: expected string, received number`. */
export function formatZodError(error: ZodError): string {
  return error.issues
    .map((issue) => {
      if (issue.code === 'unrecognized_keys') {
        // Name each unknown key with its full path, like every other error.
        return issue.keys.map((key) => `${[...issue.path, key].join('.')}: unknown key`).join('; ');
      }
      const path = issue.path.length > 0 ? issue.path.join('.') : '(top level)';
      const message = issue.message.replace(/^Invalid input: /, '');
      return `${path}: ${message}`;
    })
    .join('; ');
}

/**
 * Loads config/default.yaml, merges the user's file (argument, else BLASTWATCH_CONFIG) and the
 * environment overrides, validates the result and resolves paths. Throws ConfigError.
 */
export function loadConfig(file?: string | null, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const files = [DEFAULT_CONFIG_PATH];
  let tree = readYaml(DEFAULT_CONFIG_PATH);
  const userFile = file ?? env.BLASTWATCH_CONFIG;
  if (userFile) {
    const path = resolve(userFile);
    tree = merge(tree, readYaml(path));
    files.push(path);
  }
  const envOverrides: string[] = [];
  for (const [name, { path, parse }] of Object.entries(ENV_OVERRIDES)) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    setPath(tree, path, parse(raw));
    envOverrides.push(name);
  }
  const parsed = configSchema.safeParse(tree);
  if (!parsed.success) {
    const where = files.length > 1 ? files[files.length - 1] : 'defaults';
    const envNote = envOverrides.length > 0 ? ` (environment: ${envOverrides.join(', ')})` : '';
    throw new ConfigError(`config error in ${where}${envNote}: ${formatZodError(parsed.error)}`);
  }
  const parsedConfig = parsed.data;
  const deviceId = parsedConfig.device_id ?? hostname().replace(/[^A-Za-z0-9_.-]/g, '-');
  const capture = parsedConfig.capture;
  const config: ResolvedConfig = {
    ...parsedConfig,
    device_id: deviceId,
    capture: {
      ...capture,
      dir: resolve(capture.dir),
      move_processed_to: capture.move_processed_to && resolve(capture.move_processed_to),
      move_quarantined_to: capture.move_quarantined_to && resolve(capture.move_quarantined_to),
    },
    data: { ...parsedConfig.data, dir: resolve(parsedConfig.data.dir) },
    lis: {
      ...parsedConfig.lis,
      file_dir: parsedConfig.lis.file_dir && resolve(parsedConfig.lis.file_dir),
      fhir_dir: parsedConfig.lis.fhir_dir && resolve(parsedConfig.lis.fhir_dir),
    },
    model: {
      ...parsedConfig.model,
      dir: parsedConfig.model.dir === null ? BUNDLED_MODEL_DIR : resolve(parsedConfig.model.dir),
    },
    mqtt: {
      ...parsedConfig.mqtt,
      client_id: parsedConfig.mqtt.client_id ?? `blastwatch-${deviceId}`,
      topic_prefix: parsedConfig.mqtt.topic_prefix ?? `blastwatch/${deviceId}`,
    },
  };
  return { config, files, envOverrides };
}

/** True when an HTTP bind address only accepts connections from this machine. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127(\.\d{1,3}){3}$/.test(host);
}

/** Cross-key rules that a schema of single keys cannot express. */
export function checkConfigRules(config: Config): void {
  if (
    !isLoopbackHost(config.http.host) &&
    config.http.auth_token === null &&
    config.http.users.length === 0
  ) {
    throw new ConfigError(
      `http.host: binding to ${config.http.host} exposes the dashboard on the network; set http.auth_token ` +
        `(or BLASTWATCH_AUTH_TOKEN) or http.users first`,
    );
  }
  if (config.mqtt.url?.startsWith('mqtts') === false && (config.mqtt.cert_file || config.mqtt.key_file)) {
    throw new ConfigError('mqtt.cert_file: TLS client files are set but mqtt.url is not mqtts:// or wss://');
  }
  if (config.lis.retry_min_ms > config.lis.retry_max_ms) {
    throw new ConfigError(
      `lis.retry_min_ms: ${config.lis.retry_min_ms} ms is more than lis.retry_max_ms (${config.lis.retry_max_ms} ms)`,
    );
  }
}
