/**
 * `s3x manifest ls <manifest>`: a manifest's entries, one line each. By default refs are resolved
 * (the entries of every part and referenced manifest, each read once) and each line is
 * `kind<TAB>key<TAB>size` (a shard's key is its archive key, `-` for an unknown size). `--raw`
 * lists the manifest's own lines, refs included; `--expand-shards` replaces each shard by its
 * members (read from the head of its archive); `--json` prints each entry as a manifest line
 * (compact JSON, as `serializeEntry` writes it), so the output is itself a manifest. An archive
 * key (`.tar`, `.tar.gz`) lists the shard's internal manifest.
 *
 * @example
 * ```sh
 * s3x manifest ls training/123/samples/manifest.jsonl --expand-shards
 * # file	training/123/samples/shards/shard-…-00000.tar#a/0001.wav	3120
 * s3x manifest ls training/123/samples/manifest.jsonl --raw --json > copy.jsonl
 * ```
 */
import { expandShards, type ManifestEntry, serializeEntry } from 's3exchange'
import type { Command } from '../command.js'

/** One entry as a human line: `kind<TAB>key<TAB>size`. */
export function entryLine(entry: ManifestEntry): string {
  const key = entry.kind === 'shard' ? entry.archive_key : entry.key
  const size = typeof entry.size_bytes === 'number' ? String(entry.size_bytes) : '-'
  return `${entry.kind}\t${key}\t${size}`
}

export const manifestLs: Command = {
  name: 'manifest ls',
  usage: 'manifest ls <manifest> [--raw] [--expand-shards] [--json]',
  summary: "list a manifest's entries",
  description: `Prints the entries of <manifest>, one per line: kind, key (a shard's archive key) and
size in bytes ('-' when unknown), separated by tabs. Refs are resolved: the entries of its parts
and of every manifest it references come in their place, each manifest read once.
An archive key (.tar, .tar.gz) lists the shard's internal manifest.

Examples:
  s3x manifest ls training/123/samples/manifest.jsonl
  s3x manifest ls training/123/samples/manifest.jsonl --expand-shards --json > flat.jsonl`,
  options: { raw: { type: 'boolean' }, 'expand-shards': { type: 'boolean' }, json: { type: 'boolean' } },
  optionHelp: [
    ['--raw', "the manifest's own lines: manifest_ref entries are listed, not resolved"],
    ['--expand-shards', "each shard replaced by its members (from its archive's internal manifest)"],
    ['--json', 'one compact JSON entry per line, as in a manifest'],
  ],
  args: { min: 1, max: 1 },
  async run({ args, flags, store: getStore, output }) {
    const key = args[0] as string
    const store = getStore()
    let entries: AsyncIterable<ManifestEntry>
    if (store.isShard(key)) entries = store.getManifest(key).iterEntries()
    else if (flags.raw && flags['expand-shards'])
      entries = expandShards(store.context())(store.iterManifestEntries(key, { resolveRefs: false }))
    else if (flags['expand-shards']) entries = store.listManifestFiles(key)
    else entries = store.iterManifestEntries(key, { resolveRefs: !flags.raw })
    for await (const entry of entries) await output.line(flags.json ? serializeEntry(entry) : entryLine(entry))
    return 0
  },
}
