/**
 * `s3x follow <manifest>`: prints a manifest's entries, then those appended to it
 * (`append_parts`) as they appear, until interrupted (Ctrl-C ends it cleanly, exit 0). The root
 * is polled every `--interval` milliseconds with a conditional GET (304 while unchanged); only
 * its new bytes and the new parts they name are read. `--after <cursor>` starts after an entry a
 * previous run printed (`--json` prints each entry with its cursor); a root rewritten rather than
 * appended to (a compaction) ends it with an error.
 *
 * @example
 * ```sh
 * s3x follow training/123/samples/manifest.jsonl
 * # file	training/123/samples/0001.wav	3120
 * s3x follow training/123/samples/manifest.jsonl --json --interval 5000 | tee entries.jsonl
 * # {"entry":{"kind":"file","key":"training/123/samples/0001.wav",…},"cursor":"eyJ2Ijox…"}
 * s3x follow training/123/samples/manifest.jsonl --after "$(tail -1 entries.jsonl | jq -r .cursor)"
 * ```
 */
import { parsePositiveInteger } from '../args.js'
import type { Command } from '../command.js'
import { entryLine } from './manifest-ls.js'

export const follow: Command = {
  name: 'follow',
  usage: 'follow <manifest> [--after <cursor>] [--interval <ms>] [--json]',
  summary: 'print entries as they are appended to a manifest',
  description: `Prints the entries of <manifest> (refs resolved, each part read once), then every entry
appended to it (append_parts) as it appears, until interrupted: Ctrl-C (SIGINT) ends it cleanly.
The root is polled every --interval milliseconds with a conditional GET (answered 304 while it is
unchanged); only its new bytes and the new parts they name are read. A root rewritten rather
than appended to (a compaction) ends it with an error (exit 1).
Each line is kind, key (a shard's archive key) and size, separated by tabs; with --json, one
{"entry": …, "cursor": …} object per line: give a cursor to --after to start after that entry.

Examples:
  s3x follow training/123/samples/manifest.jsonl
  s3x follow s3://datasets/training/123/samples/manifest.jsonl --json > entries.jsonl
  s3x follow training/123/samples/manifest.jsonl --after "$(tail -1 entries.jsonl | jq -r .cursor)"`,
  options: {
    after: { type: 'string' },
    interval: { type: 'string' },
    json: { type: 'boolean' },
  },
  optionHelp: [
    ['--after <cursor>', 'start after the entry this cursor was printed with (--json prints them)'],
    ['--interval <ms>', 'pause between two polls of the root, in milliseconds (default 1000)'],
    ['--json', 'one {"entry": …, "cursor": …} object per line'],
  ],
  args: { min: 1, max: 1 },
  operands: { args: [['<manifest>', 'key']] },
  async run({ args, flags, store, output }) {
    const interval = flags.interval === undefined ? 1000 : parsePositiveInteger(flags.interval as string, '--interval')
    const stop = new AbortController()
    const onInterrupt = () => stop.abort()
    process.once('SIGINT', onInterrupt)
    try {
      const entries = store().follow(args[0] as string, {
        after: flags.after as string | undefined,
        pollIntervalMs: interval,
        signal: stop.signal,
      })
      for await (const { entry, cursor } of entries) {
        await output.line(flags.json ? JSON.stringify({ entry, cursor }) : entryLine(entry))
      }
    } finally {
      process.off('SIGINT', onInterrupt)
    }
    return 0
  },
}
