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
import type { Output } from './output.js'

/** What a command's `run` gets. */
export interface CommandContext {
  /** The positional arguments, after the command word(s). */
  args: string[]
  /** The flags, global and the command's own. */
  flags: FlagValues
  /** The store, built on first use from the environment and the connection flags. */
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
  /** Does the work; resolves to the exit code (undefined: 0). */
  run(context: CommandContext): Promise<number | undefined>
}
