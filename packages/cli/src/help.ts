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
  ['--endpoint URL', "S3 endpoint (default: S3_ENDPOINT_URL, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the profile's; none: AWS)"],
  ['--bucket NAME', 'bucket of plain keys (default: S3_BUCKET); an s3://bucket/key argument names its own'],
  ['--region NAME', "region (default: S3_REGION, AWS_REGION, AWS_DEFAULT_REGION, the profile's; none: us-east-1)"],
  ['--profile NAME', 'AWS profile of ~/.aws/config and ~/.aws/credentials (default: AWS_PROFILE, then default)'],
  ['--sse-c-key KEY', 'SSE-C key for every read and write: base64 of 32 bytes, or fileb://PATH (default: S3X_SSE_C_KEY)'],
  ['--json', "machine output (each command's own); an error as one JSON object on stderr"],
  ['--debug', 'print the stack of an error, and its causes'],
  ['--verbose', 'print on stderr what the library did on its own: reads resumed, writes retried, fallbacks, server capabilities learned'],
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

Keys: a key or prefix is a key of the configured bucket (S3_BUCKET, --bucket), or an S3 URI
s3://bucket/key, used in the bucket it names (s3://bucket alone, where a prefix is taken: the whole
bucket). One command works in one bucket.

Configuration comes from the flags above, then the environment, as S3ExchangeStore.fromEnv() reads
it (S3_ENDPOINT_URL, S3_REGION, S3_BUCKET, S3_AWS_ACCESS_KEY_ID, S3_AWS_SECRET_ACCESS_KEY,
S3_AWS_SESSION_TOKEN, S3_FORCE_PATH_STYLE, then the AWS_* equivalents), then a .env file in the
working directory, then the AWS profile (--profile, AWS_PROFILE or default: its region,
endpoint_url and s3 addressing_style; with --profile, its credentials win over AWS_ACCESS_KEY_ID,
not over S3_AWS_ACCESS_KEY_ID).

Errors: one line on stderr; with --json, one JSON object (name, message and the error's fields).
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
