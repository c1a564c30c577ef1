/**
 * Tests that shell out to a system tool (`tar --zstd`, `zstd`, `gzip`) must fail, not skip, when
 * the machine lacks it: a skipped check proves nothing. `requireTool` says which tool is missing
 * and how to install it, in the test's own failure message.
 *
 * @example
 * ```ts
 * import { requireTool } from '@s3exchange/testing'
 *
 * it('GNU tar reads the .tar.zst', () => {
 *   requireTool('zstd', { install: 'apt-get install zstd' }) // throws when `zstd --version` fails
 *   execFileSync('tar', ['--zstd', '-xf', file, '-C', out])
 * })
 * ```
 */
import { execFileSync } from 'node:child_process'

/** Options for {@link requireTool}. */
export interface RequireToolOptions {
  /** Arguments that make the tool print its version and exit 0. Default `['--version']`. */
  versionArgs?: string[]
  /** How to install it, for the message (e.g. `apt-get install zstd`). */
  install?: string
}

/** Throws an error naming `command` and how to install it when running it with `versionArgs` fails. */
export function requireTool(command: string, options: RequireToolOptions = {}): void {
  try {
    execFileSync(command, options.versionArgs ?? ['--version'], { stdio: 'ignore' })
  } catch (error) {
    const how = options.install ? `: install it (${options.install})` : ''
    throw new Error(`this test needs the system tool \`${command}\`, which cannot be run here${how}`, { cause: error })
  }
}
