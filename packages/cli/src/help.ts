/**
 * The help texts of `s3x`: the tool's (`s3x --help`: the commands, the global flags, the
 * environment) and each command's (`s3x <command> --help`: usage, description, its flags).
 *
 * @example
 * ```ts
 * import { commandHelp, commands, toolHelp } from '@s3exchange/cli'
 *
 * console.log(toolHelp(commands))
 * console.log(commandHelp(commands[0]))
 * ```
 */
import type { Command } from './command.js'

const GLOBAL_HELP: [string, string][] = [
  ['--endpoint URL', 'S3 endpoint (default: S3_ENDPOINT_URL, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL; none: AWS)'],
  ['--bucket NAME', 'bucket (default: S3_BUCKET)'],
  ['--region NAME', 'region (default: S3_REGION, AWS_REGION, AWS_DEFAULT_REGION; none: us-east-1)'],
  ['--debug', 'print the stack of an error, and its causes'],
  ['-h, --help', 'show help'],
]

function table(rows: [string, string][]): string {
  const width = Math.max(...rows.map(([name]) => name.length)) + 2
  return rows.map(([name, text]) => `  ${name.padEnd(width)}${text}`).join('\n')
}

/** `s3x --help`. */
export function toolHelp(commands: readonly Command[]): string {
  return `s3x: list, read, write, pack, verify and delete s3exchange datasets (JSONL manifests and
tar shard archives) in S3 or any S3-compatible store.

Usage: s3x <command> [arguments] [flags]

Commands:
${table(commands.map((command) => [command.name, command.summary]))}

Global flags:
${table([...GLOBAL_HELP, ['--version', 'print the version']])}

Configuration comes from the environment, as S3ExchangeStore.fromEnv() reads it: S3_ENDPOINT_URL,
S3_REGION, S3_BUCKET, S3_AWS_ACCESS_KEY_ID, S3_AWS_SECRET_ACCESS_KEY, S3_AWS_SESSION_TOKEN,
S3_FORCE_PATH_STYLE, the AWS_* equivalents, and a .env file in the working directory; the flags
above win over all of them.

Exit codes: 0 success, 1 failure (an error, a problem found by verify), 2 usage.
Run 's3x <command> --help' for a command's details.`
}

/** `s3x <command> --help`. */
export function commandHelp(command: Command): string {
  const own = command.optionHelp.length > 0 ? `Flags:\n${table(command.optionHelp)}\n\n` : ''
  return `Usage: s3x ${command.usage}

${command.summary[0]?.toUpperCase()}${command.summary.slice(1)}.

${command.description}

${own}Global flags:
${table(GLOBAL_HELP)}`
}
