/**
 * Command-line parsing for `s3x`, on Node's own `util.parseArgs`: the command word is found
 * first (global flags may come before or after it), then the rest is parsed strictly against the
 * global flags and the command's own. Anything a user can get wrong (an unknown command or flag,
 * a missing or extra argument, a bad number or size) is a {@link UsageError}: exit code 2.
 *
 * @example
 * ```ts
 * import { parseSize, splitCommand } from '@s3exchange/cli'
 *
 * splitCommand(['--bucket', 'b', 'manifest', 'ls', 'm.jsonl'], ['ls', 'manifest ls'])
 * // → { command: 'manifest ls', rest: ['--bucket', 'b', 'm.jsonl'] }
 * parseSize('64MiB') // 67108864
 * ```
 */
import { type ParseArgsOptionsConfig, parseArgs } from 'node:util'
import { checkOption, describeRule, OPTION_RULES } from 's3exchange/internals'

type OptionRule = (typeof OPTION_RULES)[string]

/** A mistake on the command line; `s3x` prints it with a hint and exits with code 2. */
export class UsageError extends Error {
  override name = 'UsageError'
  /** The command whose usage was wrong, for the hint (`s3x <command> --help`). */
  readonly command: string | undefined

  constructor(message: string, command?: string) {
    super(message)
    this.command = command
  }
}

/** Flags every command takes. */
export const GLOBAL_OPTIONS = {
  endpoint: { type: 'string' },
  bucket: { type: 'string' },
  region: { type: 'string' },
  profile: { type: 'string' },
  'sse-c-key': { type: 'string' },
  json: { type: 'boolean' },
  debug: { type: 'boolean' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const satisfies ParseArgsOptionsConfig

/** The global flags that take a value, as they may appear before the command word. */
const GLOBAL_VALUE_FLAGS = new Set(['--endpoint', '--bucket', '--region', '--profile', '--sse-c-key'])

/** The parsed values of some flags: strings, booleans, lists (flags given more than once), or undefined when absent. */
export type FlagValues = Record<string, string | boolean | string[] | undefined>

/** The command word(s) found in argv, and argv without them. */
export interface SplitCommand {
  /** `'ls'`, `'manifest ls'`, ... or undefined when argv names none. */
  command: string | undefined
  /** The words that were taken for a command but name none (for the error message). */
  unknown: string | undefined
  /** argv without the command word(s). */
  rest: string[]
}

/**
 * Finds the command in `argv`: the first word that is not a flag (nor the value of a global flag
 * that takes one), and for a command group such as `manifest`, the next one too.
 */
export function splitCommand(argv: readonly string[], commands: readonly string[]): SplitCommand {
  const groups = new Set(commands.filter((name) => name.includes(' ')).map((name) => name.split(' ')[0]))
  const taken: number[] = []
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] as string
    if (token === '--') break
    if (token.startsWith('-') && token !== '-') {
      if (GLOBAL_VALUE_FLAGS.has(token)) i++
      continue
    }
    taken.push(i)
    if (taken.length === 2 || !groups.has(token)) break
  }
  const words = taken.map((i) => argv[i] as string)
  const rest = argv.filter((_, i) => !taken.includes(i))
  if (words.length === 0) return { command: undefined, unknown: undefined, rest }
  const name = words.join(' ')
  if (commands.includes(name)) return { command: name, unknown: undefined, rest }
  // `manifest` alone or `manifest foo`: report the words as given.
  return { command: undefined, unknown: name, rest }
}

/** Parses argv against the global flags and `options`, strictly. */
export function parseFlags(
  argv: readonly string[],
  options: ParseArgsOptionsConfig,
  command?: string,
): { values: FlagValues; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      options: { ...GLOBAL_OPTIONS, ...options },
      allowPositionals: true,
      strict: true,
    })
    return { values: values as FlagValues, positionals }
  } catch (error) {
    throw new UsageError(cleanParseError(error), command)
  }
}

/** parseArgs's messages, shortened to what a user needs ("unknown option '--x'"). */
function cleanParseError(error: unknown): string {
  const message = (error as Error).message ?? String(error)
  const unknown = /^Unknown option '([^']+)'/.exec(message)
  if (unknown) return `unknown option '${unknown[1]}'`
  const missing = /^Option '(?:-\w, )?(--[^' ]+)[^']*' argument missing/.exec(message)
  if (missing) return `option '${missing[1]}' needs a value`
  const positional = /^Unexpected argument '([^']+)'/.exec(message)
  if (positional) return `unexpected argument '${positional[1]}'`
  return message.split('\n')[0] as string
}

/**
 * A positive integer flag value, or a `UsageError` naming the flag. With `option`, the value must
 * also keep the library's rule for that option (`concurrency`: 1 to 1024, …; see `OPTION_RULES`).
 */
export function parsePositiveInteger(value: string, flag: string, command?: string, option?: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(`${flag} needs a positive integer, not '${value}'`, command)
  }
  return withinRule(Number(value), value, flag, command, option)
}

/** `number` if it keeps the rule of `option` (when given), else a `UsageError` naming the flag and the rule. */
function withinRule(number: number, value: string, flag: string, command: string | undefined, option: string | undefined): number {
  if (option === undefined) return number
  try {
    checkOption(command ?? 's3x', option, number)
  } catch {
    throw new UsageError(`${flag} needs ${describeRule(OPTION_RULES[option] as OptionRule)}, not '${value}'`, command)
  }
  return number
}

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kib: 1024,
  kb: 1000,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  mb: 1000 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  gb: 1000 ** 3,
  t: 1024 ** 4,
  tib: 1024 ** 4,
  tb: 1000 ** 4,
}

/**
 * A size in bytes: `512`, `10k`, `64MiB`, `1.5G`, `100MB`. `k`/`K`, `M`, `G`, `T` and the
 * `KiB` forms are binary (1024); `kB`, `MB`, `GB`, `TB` are decimal (1000). Case-insensitive.
 * Undefined for anything else.
 */
export function parseSize(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text)
  if (!match) return undefined
  const unit = UNITS[(match[2] as string).toLowerCase()]
  if (unit === undefined) return undefined
  const bytes = Math.floor(Number(match[1]) * unit)
  return Number.isSafeInteger(bytes) ? bytes : undefined
}

/** A positive size flag value, or a `UsageError` naming the flag (and, with `option`, the library's rule for it). */
export function parseSizeFlag(value: string, flag: string, command?: string, option?: string): number {
  const bytes = parseSize(value)
  if (bytes === undefined || bytes < 1) throw new UsageError(`${flag} needs a size such as 512, 10k, 64MiB or 1G, not '${value}'`, command)
  return withinRule(bytes, value, flag, command, option)
}
