/**
 * Confirmation before destructive work. With `--yes` it proceeds; on a terminal (stdin and stderr
 * both TTYs) it asks `… [y/N]` and proceeds only on `y` or `yes`; anywhere else (a pipe, a
 * script, CI) it refuses with a {@link ConfirmationRefused} error (exit 1) that says to pass
 * `--yes`, so that nothing is deleted by a script that forgot to say so.
 *
 * @example
 * ```ts
 * import { confirm } from '@s3exchange/cli'
 *
 * if (await confirm('Delete 12 objects under jobs/123/?', { yes: flags.yes === true })) await store.deletePrefix('jobs/123/')
 * ```
 */
import { createInterface } from 'node:readline/promises'
import { S3ExchangeError } from 's3exchange'

/** Destructive work was not confirmed and could not be asked about. */
export class ConfirmationRefused extends S3ExchangeError {
  override name = 'ConfirmationRefused'
}

/** Options for {@link confirm}. */
export interface ConfirmOptions {
  /** `--yes`: proceed without asking. */
  yes: boolean
  /** Where the answer comes from. Default `process.stdin`. */
  input?: NodeJS.ReadableStream & { isTTY?: boolean }
  /** Where the question goes. Default `process.stderr`. */
  output?: NodeJS.WritableStream & { isTTY?: boolean }
}

/** Asks, or refuses; see the module comment. Resolves to true to proceed. */
export async function confirm(question: string, options: ConfirmOptions): Promise<boolean> {
  if (options.yes) return true
  const input = options.input ?? process.stdin
  const output = options.output ?? process.stderr
  if (!input.isTTY || !output.isTTY) {
    throw new ConfirmationRefused('refusing to delete without confirmation: not a terminal; pass --yes to delete (or --dry-run to look)')
  }
  const readline = createInterface({ input, output })
  try {
    const answer = await readline.question(`${question} [y/N] `)
    return /^\s*y(es)?\s*$/i.test(answer)
  } finally {
    readline.close()
  }
}
