/**
 * `s3x get <manifest | key> <dir>`: downloads into a folder, with the library's safe paths: a
 * manifest (a `.jsonl` key, or any key with `--manifest`) brings everything it references, shard
 * members under their path inside the archive (so a folder packed with `s3x pack` comes back as
 * the same tree) and loose objects under their key's basename; any other key (or virtual key
 * `archive#member`) brings that one object. Files are written atomically, never outside `<dir>`
 * nor through a link, and two objects that map to one file are refused. Prints each file written.
 *
 * @example
 * ```sh
 * s3x get training/123/samples/manifest.jsonl ./samples     # → ./samples/a/0001.wav, …
 * s3x get 'training/123/samples/shards/shard-00000.tar#a/0001.wav' .
 * ```
 */
import { DEFAULT_FETCH_CONCURRENCY } from 's3exchange'
import { parsePositiveInteger } from '../args.js'
import type { Command } from '../command.js'

export const get: Command = {
  name: 'get',
  usage: 'get <manifest | key> <dir> [--manifest] [--concurrency N] [--json]',
  summary: 'download a manifest, an object or a shard member into a folder',
  description: `Downloads into <dir> (created if needed). A manifest (a .jsonl key, or any key with
--manifest) brings every object it references: shard members under their path inside the
archive, loose objects under their key's basename. Any other key, or a virtual key
archive#member, brings that one object. Prints the path of each file written.
Paths that would leave <dir> (absolute, '..'), links in the way, and two objects mapping to
one file are refused; every file is written to a temporary name first.
(To download a manifest object itself rather than what it references: s3x cat <key> > file.)

Examples:
  s3x get training/123/samples/manifest.jsonl ./samples
  s3x get s3://datasets/training/123/samples/manifest.jsonl ./samples
  s3x get 'training/123/samples/shards/shard-00000.tar#a/0001.wav' .`,
  options: { manifest: { type: 'boolean' }, concurrency: { type: 'string' }, json: { type: 'boolean' } },
  optionHelp: [
    ['--manifest', 'read <key> as a manifest whatever its extension'],
    ['--concurrency N', `objects fetched at once (default ${DEFAULT_FETCH_CONCURRENCY})`],
    ['--json', 'one {"key","path"} object per line'],
  ],
  args: { min: 2, max: 2 },
  operands: {
    args: [
      ['<manifest | key>', 'key'],
      ['<dir>', 'path'],
    ],
  },
  async run({ args, flags, store: getStore, output }) {
    const [key, dir] = args as [string, string]
    const concurrency =
      flags.concurrency === undefined ? undefined : parsePositiveInteger(String(flags.concurrency), '--concurrency', 'get', 'concurrency')
    const store = getStore()
    const asManifest = flags.manifest === true || store.isManifest(key)
    // The library's progress: files written with their bytes, out of the files planned.
    const progress = output.progress('get', { unit: 'files' })
    let written: Map<string, string>
    try {
      written = asManifest
        ? await store.downloadManifest(key, dir, { concurrency, onProgress: progress.report })
        : await store.downloadObjects([key], dir, { concurrency, onProgress: progress.report })
    } finally {
      progress.done()
    }
    for (const [objectKey, path] of written) await output.line(flags.json ? JSON.stringify({ key: objectKey, path }) : path)
    output.note(`${written.size} file(s) written under ${dir}`)
    return 0
  },
}
