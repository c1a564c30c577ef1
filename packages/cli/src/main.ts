/**
 * `s3x`'s entry point as a function: parses the command line, prints help or the version, reads
 * the AWS profile, turns `s3://bucket/key` operands into keys of one bucket, runs the command, and
 * turns every outcome into an exit code: 0 success, 1 failure (the error printed as one line,
 * `s3x: <message>`, with the stack only under `--debug`), 2 usage (an unknown command or flag, a
 * missing or extra argument, a malformed URI, an unknown profile, no bucket). With `--json` on the
 * command line, an error is one JSON object on stderr instead (`errorJson`: its name, message and
 * typed fields). `bin.ts` calls it with `process.argv.slice(2)`; tests and other tools can call it
 * too.
 *
 * @example
 * ```ts
 * import { main } from '@s3exchange/cli'
 *
 * process.exitCode = await main(['manifest', 'ls', 'training/123/samples/manifest.jsonl', '--json'])
 * ```
 */
import { readFileSync } from 'node:fs'
import type { S3ExchangeEvent, S3ExchangeStore } from 's3exchange'
import { parseFlags, splitCommand, UsageError } from './args.js'
import type { Command } from './command.js'
import { commands } from './commands/index.js'
import { storeFromFlags } from './config.js'
import { commandHelp, toolHelp } from './help.js'
import { locateOperands } from './operands.js'
import { errorJson, formatError, Output } from './output.js'
import { loadAwsProfile } from './profile.js'
import { sseCustomerKeyFromFlags } from './write-flags.js'

/** Options for {@link main}. */
export interface MainOptions {
  /** Where to write. Default: `process.stdout` and `process.stderr`. */
  output?: Output
  /** The environment to configure the store from. Default `process.env`. */
  env?: Record<string, string | undefined>
}

/** The version in this package's package.json. */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}

/** Runs `s3x` with `argv` (without `node` and the script); resolves to the exit code. */
export async function main(argv: readonly string[], options: MainOptions = {}): Promise<number> {
  const output = options.output ?? new Output()
  const beforeDashes = argv.includes('--') ? argv.slice(0, argv.indexOf('--')) : argv
  const debug = beforeDashes.includes('--debug')
  const wantsHelp = beforeDashes.includes('--help') || beforeDashes.includes('-h')
  const jsonErrors = beforeDashes.includes('--json')
  let command: Command | undefined
  let store: S3ExchangeStore | undefined
  try {
    const names = commands.map((each) => each.name)
    const split = splitCommand(argv, [...names, 'help'])
    if (split.unknown !== undefined) {
      const group = commands.filter((each) => each.name.startsWith(`${split.unknown} `))
      if (group.length > 0 && wantsHelp) {
        await output.line(group.map(commandHelp).join('\n\n'))
        return 0
      }
      if (group.length > 0) throw new UsageError(`'${split.unknown}' needs a subcommand: ${group.map((each) => each.name).join(', ')}`)
      throw new UsageError(`unknown command '${split.unknown}'`)
    }
    if (split.command === 'help') {
      const { positionals } = parseFlags(split.rest, {})
      const named = positionals.join(' ')
      const target = commands.find((each) => each.name === named)
      if (named !== '' && !target) throw new UsageError(`unknown command '${named}'`)
      await output.line(target ? commandHelp(target) : toolHelp(commands))
      return 0
    }
    command = commands.find((each) => each.name === split.command)
    if (command === undefined) {
      const { values } = parseFlags(split.rest, {})
      if (values.version) {
        await output.line(version())
        return 0
      }
      if (values.help) {
        await output.line(toolHelp(commands))
        return 0
      }
      output.note(toolHelp(commands))
      return 2
    }
    if (wantsHelp) {
      await output.line(commandHelp(command))
      return 0
    }
    const { values, positionals } = parseFlags(split.rest, command.options, command.name)
    if (values.help) {
      // -h grouped with other short flags (-lh): help, as alone.
      await output.line(commandHelp(command))
      return 0
    }
    if (values.version) {
      await output.line(version())
      return 0
    }
    if (positionals.length < command.args.min) throw new UsageError(`missing argument (usage: s3x ${command.usage})`, command.name)
    if (positionals.length > command.args.max) {
      throw new UsageError(`unexpected argument '${positionals[command.args.max]}'`, command.name)
    }
    const env = options.env ?? process.env
    const flags = { endpoint: values.endpoint, bucket: values.bucket, region: values.region } as Record<string, string | undefined>
    if (values.profile === '') throw new UsageError('--profile needs a value', command.name)
    const profile = await loadAwsProfile(values.profile as string | undefined, env)
    const operands = locateOperands(command.operands, positionals, values, command.name)
    const sseCustomerKey = sseCustomerKeyFromFlags(values['sse-c-key'] as string | undefined, env, command.name)
    // --verbose: what the library did on its own (resumed reads, retried writes, fallbacks, capabilities learned).
    const onEvent = values.verbose === true ? (event: S3ExchangeEvent) => output.event(event, jsonErrors) : undefined
    const sources = { profile, operands, command: command.name, sseCustomerKey, onEvent }
    const getStore = () => {
      store ??= storeFromFlags(flags, env, sources)
      return store
    }
    return (await command.run({ args: operands.args, flags: operands.flags, store: getStore, output })) ?? 0
  } catch (error) {
    if ((error as { code?: string } | undefined)?.code === 'EPIPE') return 0
    const usage = error instanceof UsageError
    if (jsonErrors) {
      const json = errorJson(error, debug)
      if (usage && error.command === undefined && command) json.command = command.name
      output.note(JSON.stringify(json))
    } else if (usage) {
      const name = error.command ?? command?.name
      output.note(`s3x: ${name ? `${name}: ` : ''}${error.message}`)
      output.note(`Run 's3x ${name ? `${name} ` : ''}--help' for usage.`)
    } else {
      output.note(formatError(error, debug))
    }
    return usage ? 2 : 1
  } finally {
    store?.client.destroy()
  }
}
