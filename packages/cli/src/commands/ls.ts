/**
 * `s3x ls [prefix]`: every key under a prefix, one per line, across all pages of the listing (as
 * `aws s3 ls --recursive` lists). The prefix is a key prefix of the configured bucket or an
 * `s3://bucket/prefix` URI (`s3://bucket`: the whole bucket). `-l` adds each object's date (UTC)
 * and size (`--human-readable`: `3.0 KiB`) before the key, and a total on stderr; `--json` prints
 * one object per line: `key`, `size`, `lastModified`, `etag`, `storageClass`.
 *
 * @example
 * ```sh
 * s3x ls s3://datasets/training/123/samples/ -l
 * # 2026-01-01T12:00:00Z          412  training/123/samples/manifest.jsonl
 * # 2026-01-01T12:00:00Z      5242880  training/123/samples/shards/shard-20260101-120000-a1b2c3-00000.tar
 * s3x ls training/123/samples/ --json | jq -r 'select(.size > 1000000) | .key'
 * ```
 */
import type { Command } from '../command.js'
import { listObjects, longLine } from '../listing.js'
import { formatBytes } from '../output.js'

export const ls: Command = {
  name: 'ls',
  usage: 'ls [prefix | s3://bucket/prefix] [-l] [--human-readable] [--json]',
  summary: 'list the keys under a prefix',
  description: `Prints every key under <prefix> (the whole bucket without one), one per line, recursively.
<prefix> is a key prefix of the configured bucket, or an S3 URI: s3://bucket/prefix lists that
prefix of that bucket, s3://bucket all of it.
With -l, each line is the object's last-modified date (UTC), its size and its key, and the total
goes to stderr. With --json, one JSON object per line: key, size, lastModified, etag, storageClass.

Examples:
  s3x ls training/123/samples/
  s3x ls s3://datasets/training/123/ -l --human-readable`,
  options: { long: { type: 'boolean', short: 'l' }, 'human-readable': { type: 'boolean' }, json: { type: 'boolean' } },
  optionHelp: [
    ['-l, --long', 'date (UTC), size and key on each line; the total on stderr'],
    ['--human-readable', 'with -l: sizes as 3.0 KiB, 1.2 GiB (-h is --help)'],
    ['--json', 'one JSON object per line: key, size, lastModified, etag, storageClass'],
  ],
  args: { min: 0, max: 1 },
  operands: { args: [['[prefix]', 'prefix']] },
  async run({ args, flags, store, output }) {
    const prefix = args[0] ?? ''
    if (!flags.long && !flags.json) {
      for await (const key of store().listKeys(prefix)) await output.line(key)
      return 0
    }
    const human = flags['human-readable'] === true
    let count = 0
    let bytes = 0
    for await (const object of listObjects(store().context(), prefix)) {
      count++
      bytes += object.size ?? 0
      await output.line(flags.json ? JSON.stringify(object) : longLine(object, { human }))
    }
    if (!flags.json) output.note(`${count} object(s), ${human ? formatBytes(bytes) : `${bytes} bytes`}`)
    return 0
  },
}
