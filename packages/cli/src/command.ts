/**
 * What a command of `s3x` is: its name, its usage and help text, its flags (for `util.parseArgs`),
 * how many arguments it takes, and `run`, which gets the parsed command line, a lazily built
 * store and the output, and resolves to the exit code (0 when it returns nothing).
 *
 * @example
 * ```ts
 * import type { Command } from '@s3exchange/cli'
 *
 * export const hello: Command = {
 *   name: 'hello',
 *   usage: 'hello <name>',
 *   summary: 'say hello',
 *   description: 'Prints a greeting.',
 *   options: {},
 *   optionHelp: [],
 *   args: { min: 1, max: 1 },
 *   async run({ args, output }) {
 *     await output.line(`hello ${args[0]}`)
 *   },
 * }
 * ```
 */
import type { ParseArgsOptionsConfig } from 'node:util'
import type { S3ExchangeStore } from 's3exchange'
import type { FlagValues } from './args.js'
import type { Operands } from './operands.js'
import type { Output } from './output.js'

/** What a command's `run` gets. */
export interface CommandContext {
  /** The positional arguments, after the command word(s) (`s3://` URIs among its key operands replaced by their keys). */
  args: string[]
  /** The flags, global and the command's own (key flags given as URIs replaced by their keys). */
  flags: FlagValues
  /** The store, built on first use from the flags, the environment and the profile, of the bucket the operands name. */
  store(): S3ExchangeStore
  /** stdout and stderr. */
  output: Output
}

/** One command; see the module comment. */
export interface Command {
  /** `ls`, `manifest ls`, ... */
  name: string
  /** The synopsis after `s3x `, e.g. `ls <prefix>`. */
  usage: string
  /** One line for the command list. */
  summary: string
  /** The help text's body: what it does, what it prints, and an example or two. */
  description: string
  /** The command's own flags (the global ones are added). */
  options: ParseArgsOptionsConfig
  /** Each flag's help: `['--raw', 'do not resolve manifest_ref entries']`. */
  optionHelp: [string, string][]
  /** How many positional arguments it takes. */
  args: { min: number; max: number }
  /**
   * Which arguments and flags name S3 keys or prefixes (these also take `s3://bucket/key` URIs,
   * which `run` receives as keys, the store being of that bucket) and which name local paths.
   * Default: none.
   */
  operands?: Operands
  /** Does the work; resolves to the exit code (undefined: 0). */
  run(context: CommandContext): Promise<number | undefined>
}
