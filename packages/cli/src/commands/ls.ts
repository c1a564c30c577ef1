/**
 * `s3x ls [prefix]`: every key under a prefix, one per line, across all pages of the listing.
 *
 * @example
 * ```sh
 * s3x ls training/123/samples/
 * # training/123/samples/manifest.jsonl
 * # training/123/samples/shards/shard-20260101-120000-a1b2c3-00000.tar
 * ```
 */
import type { Command } from '../command.js'

export const ls: Command = {
  name: 'ls',
  usage: 'ls [prefix]',
  summary: 'list the keys under a prefix',
  description: `Prints every key under <prefix> (the whole bucket without one), one per line.

Example:
  s3x ls training/123/samples/`,
  options: {},
  optionHelp: [],
  args: { min: 0, max: 1 },
  async run({ args, store, output }) {
    for await (const key of store().listKeys(args[0] ?? '')) await output.line(key)
    return 0
  },
}
