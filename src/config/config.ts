/**
 * Configuration: built-in defaults, overridden by a JSON config file
 * (`--config FILE` or `CITADEL_CONFIG`), overridden by the environment. The
 * file and the environment share one vocabulary: the contract's variable
 * names. An unknown key in the file, an unknown `CITADEL_*` variable, or a
 * bad value stops the start with a message naming the key.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { z } from 'zod';
import { CitadelError } from '../errors/catalogue.ts';

const environments = ['development', 'staging', 'production'] as const;
export type Environment = (typeof environments)[number];

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:8443');

const positiveInt = z.coerce.number().int().positive();

/** A switch: `true`/`false` in a JSON file, or the same words in the environment. */
const flag = z.union([z.boolean(), z.stringbool({ truthy: ['true'], falsy: ['false'] })], {
  error: 'expected true or false',
});

/** A budget's limit, or `off` (the sentinel that switches it off, for benchmarks). */
const budgetLimit = z.union([z.literal('off'), z.coerce.number().int().positive()]);

const cidrOrIp = z.string().refine((entry) => {
  const [address, bits] = entry.split('/');
  if (!address || isIP(address) === 0) return false;
  if (bits === undefined) return true;
  const max = isIP(address) === 4 ? 32 : 128;
  return /^\d+$/.test(bits) && Number(bits) <= max;
}, 'expected an IP address or CIDR range');

/** The raw keys, as they appear in the environment and the config file. */
const inputSchema = z
  .object({
    ENVIRONMENT: z.enum(environments),
    DATABASE_URL: z.string().url().optional(),
    DB_HOST: z.string().min(1).optional(),
    DB_PORT: positiveInt.max(65_535).optional(),
    DB_NAME: z.string().min(1).optional(),
    DB_USER: z.string().min(1).optional(),
    DB_PASSWORD: z.string().optional(),
    DB_POOL_MIN: z.coerce.number().int().min(0),
    DB_POOL_MAX: positiveInt,
    CITADEL_DATA_DIR: z.string().min(1),
    CITADEL_LISTEN: hostPort,
    CITADEL_HTTP_LISTEN: z.union([hostPort, z.literal('off')]),
    CITADEL_METRICS_LISTEN: z.union([hostPort, z.literal('off')]),
    CITADEL_PUBLIC_HOST: z.string().min(1).optional(),
    CITADEL_HEARTBEAT_INTERVAL_S: positiveInt.max(3_600),
    CITADEL_EMBEDDED_DB_USER: z.string().min(1).optional(),
    CITADEL_ENROLL_BUDGET_PER_HOUR: budgetLimit,
    CITADEL_THREAT_BUDGET_PER_HOUR: budgetLimit,
    CITADEL_REFRESH_BUDGET_PER_HOUR: budgetLimit,
    CITADEL_AUTH_FAILURES_PER_10_MIN: budgetLimit,
    CITADEL_WRITE_QUEUE_MAX: positiveInt.max(1_000_000),
    CITADEL_BCRYPT_COST: z.coerce.number().int().min(4).max(15),
    CITADEL_AGENT_TOKEN_TTL_S: z.coerce
      .number()
      .int()
      .min(10)
      .max(30 * 86_400),
    TLS_CERT_FILE: z.string().min(1).optional(),
    TLS_KEY_FILE: z.string().min(1).optional(),
    TRUSTED_PROXIES: z.string(),
    HSTS_INCLUDE_SUBDOMAINS: flag,
    HSTS_PRELOAD: flag,
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  })
  .strict()
  .refine((input) => !input.TLS_CERT_FILE || input.TLS_KEY_FILE, {
    message: 'required when TLS_CERT_FILE is set',
    path: ['TLS_KEY_FILE'],
  })
  .refine((input) => !input.TLS_KEY_FILE || input.TLS_CERT_FILE, {
    message: 'required when TLS_KEY_FILE is set',
    path: ['TLS_CERT_FILE'],
  })
  .refine((input) => !input.HSTS_PRELOAD || input.HSTS_INCLUDE_SUBDOMAINS, {
    message: 'the HSTS preload list accepts only HSTS_INCLUDE_SUBDOMAINS=true; see docs/TLS.md',
    path: ['HSTS_PRELOAD'],
  });

type Input = z.input<typeof inputSchema>;
export type ConfigKey = keyof Input;
export const configKeys = Object.keys(inputSchema.shape) as ConfigKey[];

/** Development defaults: what `serve` does on a machine with nothing configured. */
export const defaultInput: Readonly<Input> = Object.freeze({
  ENVIRONMENT: 'development',
  DB_POOL_MIN: 0,
  DB_POOL_MAX: 10,
  CITADEL_DATA_DIR: './data',
  CITADEL_LISTEN: '127.0.0.1:8443',
  CITADEL_HTTP_LISTEN: '127.0.0.1:8080',
  CITADEL_METRICS_LISTEN: 'off',
  CITADEL_HEARTBEAT_INTERVAL_S: 60,
  CITADEL_ENROLL_BUDGET_PER_HOUR: 5,
  CITADEL_THREAT_BUDGET_PER_HOUR: 100,
  CITADEL_REFRESH_BUDGET_PER_HOUR: 10,
  CITADEL_AUTH_FAILURES_PER_10_MIN: 60,
  CITADEL_WRITE_QUEUE_MAX: 20_000,
  CITADEL_BCRYPT_COST: 4,
  CITADEL_AGENT_TOKEN_TTL_S: 86_400,
  TRUSTED_PROXIES: '',
  HSTS_INCLUDE_SUBDOMAINS: false,
  HSTS_PRELOAD: false,
  LOG_LEVEL: 'info',
});

/** A sliding window: at most `limit` events in any `windowMs`. */
export interface WindowSpec {
  readonly limit: number;
  readonly windowMs: number;
}

/** The budgets of the contract; `undefined` is a budget switched off. */
export interface BudgetPolicy {
  readonly enrollmentPerIp: WindowSpec | undefined;
  readonly threatsPerAgent: WindowSpec | undefined;
  readonly refreshesPerAgent: WindowSpec | undefined;
  readonly authFailuresPerIp: WindowSpec | undefined;
}

export interface Listen {
  readonly host: string;
  readonly port: number;
}

export type DatabaseTarget =
  | { readonly kind: 'embedded'; readonly runAsUser: string | undefined }
  | { readonly kind: 'external'; readonly connectionUri: string };

/** The resolved configuration the daemon runs on. */
export interface Config {
  readonly environment: Environment;
  readonly database: DatabaseTarget;
  readonly dbPoolMin: number;
  readonly dbPoolMax: number;
  readonly dataDir: string;
  readonly listen: Listen;
  readonly httpListen: Listen | undefined;
  /** A plain listener for Prometheus alone; off unless configured. */
  readonly metricsListen: Listen | undefined;
  /** The canonical host name used in redirects; never taken from a request. */
  readonly publicHost: string;
  readonly heartbeatIntervalMs: number;
  /** bcrypt's cost factor for new hashes; see the README's security section. */
  readonly bcryptCost: number;
  readonly agentTokenTtlMs: number;
  readonly budgets: BudgetPolicy;
  /** Threats that may wait for the database before new ones are refused. */
  readonly writeQueueMax: number;
  readonly tlsCertFile: string | undefined;
  readonly tlsKeyFile: string | undefined;
  readonly trustedProxies: readonly string[];
  /** HSTS directives beyond max-age; preload implies includeSubDomains. */
  readonly hstsIncludeSubDomains: boolean;
  readonly hstsPreload: boolean;
  readonly logLevel: string;
}

export interface LoadConfigOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly configFile?: string;
  readonly cwd?: string;
}

/** Reads defaults, file and environment; throws `config_invalid` naming the key. */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const fileInput = readConfigFile(options.configFile ?? env['CITADEL_CONFIG'], cwd);
  const envInput = pickEnvironment(env);
  const credentials = readCredentials(env['CREDENTIALS_DIRECTORY']);
  const parsed = inputSchema.safeParse({
    ...defaultInput,
    ...fileInput,
    ...credentials,
    ...envInput,
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = issue.path.length > 0 ? issue.path.join('.') : describeUnknown(issue);
    throw new CitadelError('config_invalid', {
      message: `configuration key ${key}: ${issue.message}`,
      details: { key },
    });
  }
  return resolve(parsed.data, cwd);
}

function describeUnknown(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return issue.keys.join(', ');
  return '(unknown)';
}

/**
 * Secrets handed over by systemd's `LoadCredential=` (the unit in `systemd/`):
 * `database-url`, `tls.crt` and `tls.key` in `$CREDENTIALS_DIRECTORY`. They
 * sit above the config file and below the environment.
 */
function readCredentials(dir: string | undefined): Record<string, string> {
  if (!dir) return {};
  const found: Record<string, string> = {};
  const databaseUrl = path.join(dir, 'database-url');
  if (existsSync(databaseUrl)) found['DATABASE_URL'] = readFileSync(databaseUrl, 'utf8').trim();
  if (existsSync(path.join(dir, 'tls.crt'))) found['TLS_CERT_FILE'] = path.join(dir, 'tls.crt');
  if (existsSync(path.join(dir, 'tls.key'))) found['TLS_KEY_FILE'] = path.join(dir, 'tls.key');
  return found;
}

function readConfigFile(file: string | undefined, cwd: string): Record<string, unknown> {
  if (!file) return {};
  let text: string;
  try {
    text = readFileSync(path.resolve(cwd, file), 'utf8');
  } catch (cause) {
    throw new CitadelError('config_invalid', {
      message: `configuration file ${file} cannot be read`,
      cause,
      details: { key: 'CITADEL_CONFIG' },
    });
  }
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error();
    return value as Record<string, unknown>;
  } catch (cause) {
    throw new CitadelError('config_invalid', {
      message: `configuration file ${file} is not a JSON object`,
      cause,
      details: { key: 'CITADEL_CONFIG' },
    });
  }
}

function pickEnvironment(env: NodeJS.ProcessEnv): Record<string, string> {
  const known = new Set<string>([...configKeys, 'CITADEL_CONFIG']);
  const picked: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined || value === '') continue;
    if (known.has(key)) {
      if (key !== 'CITADEL_CONFIG') picked[key] = value;
    } else if (key.startsWith('CITADEL_')) {
      throw new CitadelError('config_invalid', {
        message: `configuration key ${key}: unknown setting`,
        details: { key },
      });
    }
  }
  return picked;
}

function parseListen(value: string): Listen {
  const cut = value.lastIndexOf(':');
  const host = value.slice(0, cut).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(value.slice(cut + 1)) };
}

function resolve(input: z.output<typeof inputSchema>, cwd: string): Config {
  const listen = parseListen(input.CITADEL_LISTEN);
  return Object.freeze({
    environment: input.ENVIRONMENT,
    database: resolveDatabase(input),
    dbPoolMin: input.DB_POOL_MIN,
    dbPoolMax: input.DB_POOL_MAX,
    dataDir: path.resolve(cwd, input.CITADEL_DATA_DIR),
    listen,
    httpListen:
      input.CITADEL_HTTP_LISTEN === 'off' ? undefined : parseListen(input.CITADEL_HTTP_LISTEN),
    metricsListen:
      input.CITADEL_METRICS_LISTEN === 'off'
        ? undefined
        : parseListen(input.CITADEL_METRICS_LISTEN),
    publicHost: input.CITADEL_PUBLIC_HOST ?? publicHostOf(listen),
    heartbeatIntervalMs: input.CITADEL_HEARTBEAT_INTERVAL_S * 1_000,
    bcryptCost: input.CITADEL_BCRYPT_COST,
    agentTokenTtlMs: input.CITADEL_AGENT_TOKEN_TTL_S * 1_000,
    writeQueueMax: input.CITADEL_WRITE_QUEUE_MAX,
    budgets: {
      enrollmentPerIp: windowOf(input.CITADEL_ENROLL_BUDGET_PER_HOUR, 3_600_000),
      threatsPerAgent: windowOf(input.CITADEL_THREAT_BUDGET_PER_HOUR, 3_600_000),
      refreshesPerAgent: windowOf(input.CITADEL_REFRESH_BUDGET_PER_HOUR, 3_600_000),
      authFailuresPerIp: windowOf(input.CITADEL_AUTH_FAILURES_PER_10_MIN, 600_000),
    },
    tlsCertFile: input.TLS_CERT_FILE ? path.resolve(cwd, input.TLS_CERT_FILE) : undefined,
    tlsKeyFile: input.TLS_KEY_FILE ? path.resolve(cwd, input.TLS_KEY_FILE) : undefined,
    trustedProxies: input.TRUSTED_PROXIES.split(',')
      .map((entry) => entry.trim())
      .filter((entry) => entry.length > 0)
      .map((entry) => cidrOrIp.parse(entry)),
    hstsIncludeSubDomains: input.HSTS_INCLUDE_SUBDOMAINS,
    hstsPreload: input.HSTS_PRELOAD,
    logLevel: input.LOG_LEVEL,
  });
}

function windowOf(limit: number | 'off', windowMs: number): WindowSpec | undefined {
  return limit === 'off' ? undefined : { limit, windowMs };
}

function publicHostOf(listen: Listen): string {
  const host = isIP(listen.host) === 6 ? `[${listen.host}]` : listen.host;
  return listen.port === 443 ? host : `${host}:${listen.port}`;
}

function resolveDatabase(input: z.output<typeof inputSchema>): DatabaseTarget {
  if (input.DATABASE_URL) return { kind: 'external', connectionUri: input.DATABASE_URL };
  if (input.DB_HOST) {
    const url = new URL('postgres://localhost');
    url.hostname = input.DB_HOST;
    url.port = String(input.DB_PORT ?? 5432);
    url.pathname = `/${encodeURIComponent(input.DB_NAME ?? 'citadel_archer')}`;
    url.username = encodeURIComponent(input.DB_USER ?? 'citadel_archer');
    if (input.DB_PASSWORD) url.password = encodeURIComponent(input.DB_PASSWORD);
    return { kind: 'external', connectionUri: url.toString() };
  }
  return { kind: 'embedded', runAsUser: input.CITADEL_EMBEDDED_DB_USER };
}

/** The production guard of the contract: one clear line, or nothing. */
export function productionProblem(config: Config): string | undefined {
  if (config.environment !== 'production') return undefined;
  if (!config.tlsCertFile || !config.tlsKeyFile) {
    return 'ENVIRONMENT=production needs TLS_CERT_FILE and TLS_KEY_FILE';
  }
  if (config.database.kind === 'embedded') {
    return 'ENVIRONMENT=production needs an external database (DATABASE_URL or DB_HOST)';
  }
  return undefined;
}
