/**
 * Options are checked where they enter: every public call hands its options to `checkOptions`
 * before it does anything, and a value out of its rule (NaN, a negative count, a fraction where an
 * integer is meant, a number out of range, a string where a number is meant, an unknown mode) is a
 * `ConfigurationError` naming the option and the call. One table, `OPTION_RULES`, holds the rule of
 * every option by name: an option means the same thing in every call that takes it (options are
 * documented once and picked elsewhere), so it has one rule.
 *
 * When: synchronously, at the call, before any request. A call that returns a promise returns one
 * already rejected with the error; a call that returns an iterable, a pipeline stage, a sink or a
 * writer throws it.
 *
 * @example
 * ```ts
 * import { checkOptions } from '@s3exchange/core/internals'
 *
 * checkOptions('fetchBodies', { concurrency: Number(process.env.CONCURRENCY) })
 * // ConfigurationError: fetchBodies: concurrency must be an integer from 1 to 1024, got NaN
 * ```
 */
import { ConfigurationError } from './errors.js'

/** The rule of one option. */
export type OptionRule =
  | { type: 'integer'; min: number; max?: number }
  | { type: 'number'; min: number; max?: number }
  | { type: 'enum'; values: readonly (string | null)[] }
  | { type: 'boolean' }
  | { type: 'string'; nullable?: boolean }
  | { type: 'function' }
  | { type: 'signal' }
  | { type: 'pattern' }
  | { type: 'object'; fields: Readonly<Record<string, OptionRule>>; required?: readonly string[] }

/**
 * Most connections (or requests in flight) one option may ask for: `concurrency`,
 * `shardConcurrency`, `queueSize`. Each can hold a connection of the client's pool (see the
 * connection budget, `s3/connections.ts`).
 */
export const MAX_CONNECTIONS_PER_OPTION = 1024

const connections: OptionRule = { type: 'integer', min: 1, max: MAX_CONNECTIONS_PER_OPTION }
const count = (min: number, max?: number): OptionRule => ({ type: 'integer', min, ...(max === undefined ? {} : { max }) })
const flag: OptionRule = { type: 'boolean' }
const delayMs: OptionRule = { type: 'number', min: 0, max: 2 ** 31 - 1 }

/** The read limits (`ReadLimits`), top-level in a call's options or under `limits`. */
const LIMIT_RULES = {
  maxLineBytes: count(1),
  maxRefDepth: count(0),
  maxManifests: count(1),
  maxInternalManifestBytes: count(0),
  maxMemberBytes: count(0),
} as const satisfies Record<string, OptionRule>

/** Batch limits (`RolloverLimits`), top-level in `shardInto`'s options or under `shardSize`. */
const ROLLOVER_RULES = {
  maxEntries: count(1),
  maxBytes: count(1),
  rollover: { type: 'enum', values: ['before-overflow', 'at-limit'] },
} as const satisfies Record<string, OptionRule>

/** The rule of every option of every public call, by name. */
export const OPTION_RULES: Readonly<Record<string, OptionRule>> = {
  // Connections: each request in flight holds one.
  concurrency: connections,
  shardConcurrency: connections,
  queueSize: connections,
  // Parallel ranged reads (s3/range-plan.ts): ranged GETs at once beside each object's own; bytes per range.
  rangeConcurrency: count(0, 64),
  rangeSize: count(64 * 1024),
  // How many, how much.
  limit: count(0),
  maxBufferedBytes: count(0),
  maxUnsizedItemBytes: count(0),
  partMaxEntries: count(1),
  partMaxBytes: count(1),
  partSize: count(5 * 1024 * 1024, 5 * 1024 ** 3),
  batchSize: count(1, 1000),
  maxHeadBytes: count(1),
  archiveIndexCacheSize: count(0),
  capacity: count(0),
  gzipLevel: count(1, 9),
  zstdLevel: count(1, 22),
  resumeAttempts: count(0, 100),
  maxAttempts: count(1, 1000),
  maxCommitAttempts: count(1, 1000),
  baseDelayMs: delayMs,
  maxDelayMs: delayMs,
  pollIntervalMs: delayMs,
  start: count(0),
  skip: count(0),
  end: count(0),
  ...LIMIT_RULES,
  limits: { type: 'object', fields: LIMIT_RULES },
  ...ROLLOVER_RULES,
  shardSize: { type: 'object', fields: ROLLOVER_RULES },
  partition: { type: 'object', fields: { index: count(0), count: count(1) }, required: ['index', 'count'] },
  // Choices.
  onMissing: { type: 'enum', values: ['throw', 'skip'] },
  mode: { type: 'enum', values: ['overwrite', 'append_parts'] },
  updateMode: { type: 'enum', values: ['overwrite', 'append_parts'] },
  shardFormat: { type: 'enum', values: ['tar'] },
  shardCompression: { type: 'enum', values: ['gzip', 'zstd', null] },
  // Switches.
  verify: flag,
  bodies: flag,
  expandShards: flag,
  resolveRefs: flag,
  includeShards: flag,
  dryRun: flag,
  dedupe: flag,
  deleteManifests: flag,
  referencedManifests: flag,
  publishOnError: flag,
  seekable: flag,
  cursors: flag,
  // Names and callbacks.
  within: { type: 'string' },
  after: { type: 'string' },
  basePrefix: { type: 'string' },
  shardPrefix: { type: 'string' },
  internalManifestPath: { type: 'string', nullable: true },
  contentType: { type: 'string', nullable: true },
  id: { type: 'string', nullable: true },
  inferId: { type: 'function' },
  onProgress: { type: 'function' },
  onEvent: { type: 'function' },
  archiveName: { type: 'function' },
  signal: { type: 'signal' },
  regex: { type: 'pattern' },
}

/**
 * Checks every option of `options` that has a rule in `OPTION_RULES` (others are left alone;
 * `undefined` means "not given"); throws `ConfigurationError` naming the first bad one and `call`.
 */
export function checkOptions(call: string, options: unknown): void {
  if (options === undefined) return
  if (options === null || typeof options !== 'object') {
    throw new ConfigurationError(`${call}: options must be an object, got ${describe(options)}`, { call })
  }
  for (const [name, value] of Object.entries(options)) {
    const rule = OPTION_RULES[name]
    if (rule !== undefined && value !== undefined) checkValue(call, name, rule, value)
  }
}

/** Checks one value against the rule of the option `name` (for options passed on their own, e.g. `take(limit)`). */
export function checkOption(call: string, name: string, value: unknown): void {
  const rule = OPTION_RULES[name]
  if (rule === undefined) throw new Error(`no rule for the option ${name}`)
  if (value !== undefined) checkValue(call, name, rule, value)
}

/**
 * Checks an argument that names an S3 key, prefix or local path: it must be a string (an empty one
 * reads as no object, and is refused by the writes and deletes themselves). `ConfigurationError`
 * naming the argument and the call.
 */
export function checkKey(call: string, name: string, value: unknown): void {
  if (typeof value !== 'string') {
    throw new ConfigurationError(`${call}: ${name} must be a string, got ${describe(value)}`, { call, option: name })
  }
}

/** What a rule accepts, in words (for messages and for the CLI's usage errors). */
export function describeRule(rule: OptionRule): string {
  switch (rule.type) {
    case 'integer':
    case 'number': {
      const what = rule.type === 'integer' ? 'an integer' : 'a number'
      if (rule.max === undefined) return `${what} ≥ ${rule.min}`
      return `${what} from ${rule.min} to ${rule.max}`
    }
    case 'enum':
      return `one of ${rule.values.map((value) => JSON.stringify(value)).join(', ')}`
    case 'boolean':
      return 'true or false'
    case 'string':
      return rule.nullable ? 'a string or null' : 'a string'
    case 'function':
      return 'a function'
    case 'signal':
      return 'an AbortSignal'
    case 'pattern':
      return 'a RegExp or a valid regular expression string'
    case 'object':
      return `an object with ${Object.keys(rule.fields).join(', ')}`
  }
}

function checkValue(call: string, path: string, rule: OptionRule, value: unknown): void {
  const refuse = (cause?: unknown): never => {
    throw new ConfigurationError(`${call}: ${path} must be ${describeRule(rule)}, got ${describe(value)}`, { call, option: path, cause })
  }
  switch (rule.type) {
    case 'integer':
    case 'number': {
      if (typeof value !== 'number' || Number.isNaN(value)) refuse()
      const number = value as number
      const whole = rule.type === 'integer' ? Number.isSafeInteger(number) : Number.isFinite(number)
      if (!whole || number < rule.min || (rule.max !== undefined && number > rule.max)) refuse()
      return
    }
    case 'enum':
      if (!rule.values.includes(value as string | null)) refuse()
      return
    case 'boolean':
      if (typeof value !== 'boolean') refuse()
      return
    case 'string':
      if (typeof value !== 'string' && !(rule.nullable && value === null)) refuse()
      return
    case 'function':
      if (typeof value !== 'function') refuse()
      return
    case 'signal': {
      const signal = value as Partial<AbortSignal> | null
      if (
        typeof signal !== 'object' ||
        signal === null ||
        typeof signal.aborted !== 'boolean' ||
        typeof signal.addEventListener !== 'function'
      )
        refuse()
      return
    }
    case 'pattern':
      if (value instanceof RegExp) return
      if (typeof value !== 'string') refuse()
      try {
        new RegExp(value as string)
      } catch (error) {
        refuse(error)
      }
      return
    case 'object': {
      if (value === null || typeof value !== 'object') refuse()
      for (const name of rule.required ?? []) {
        if ((value as Record<string, unknown>)[name] === undefined) {
          const field = rule.fields[name] as OptionRule
          throw new ConfigurationError(`${call}: ${path}.${name} must be ${describeRule(field)}, got undefined`, {
            call,
            option: `${path}.${name}`,
          })
        }
      }
      for (const [name, field] of Object.entries(value as Record<string, unknown>)) {
        const fieldRule = rule.fields[name]
        if (fieldRule !== undefined && field !== undefined) checkValue(call, `${path}.${name}`, fieldRule, field)
      }
      return
    }
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'bigint') return `${value}n`
  if (typeof value === 'function') return 'a function'
  if (value === null || typeof value !== 'object') return String(value)
  if (Array.isArray(value)) return 'an array'
  return 'an object'
}
