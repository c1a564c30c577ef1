/**
 * `s3x manifest ls <manifest>`: a manifest's entries, one line each. By default refs are resolved
 * (the entries of every part and referenced manifest, each read once) and each line is
 * `kind<TAB>key<TAB>size` (a shard's key is its archive key, `-` for an unknown size). `--raw`
 * lists the manifest's own lines, refs included; `--expand-shards` replaces each shard by its
 * members (read from the head of its archive); `--json` prints each entry as a manifest line
 * (compact JSON, as `serializeEntry` writes it), so the output is itself a manifest. An archive
 * key (`.tar`, `.tar.gz`) lists the shard's internal manifest. `-l` reads each object the entries
 * name (a HEAD, 16 at a time, in order) and prints `kind  date  size  key` as `ls -l` does (a shard
 * member: its archive's date, its own size; `missing` for an object that is not there); with
 * `--json`, one `{kind, key, size, lastModified, etag}` object per line.
 *
 * @example
 * ```sh
 * s3x manifest ls training/123/samples/manifest.jsonl --expand-shards
 * # file	training/123/samples/shards/shard-…-00000.tar#a/0001.wav	3120
 * s3x manifest ls s3://datasets/training/123/samples/manifest.jsonl -l --human-readable
 * # shard  2026-01-01T12:00:00Z     5.0 MiB  training/123/samples/shards/shard-…-00000.tar
 * s3x manifest ls training/123/samples/manifest.jsonl --raw --json > copy.jsonl
 * ```
 */
import { expandShards, type ManifestEntry, type S3Context, serializeEntry } from 's3exchange'
import type { Command } from '../command.js'
import { headListing, type ListedObject, longLine } from '../listing.js'
import { mapAhead } from '../pool.js'

/** One entry as a human line: `kind<TAB>key<TAB>size`. */
export function entryLine(entry: ManifestEntry): string {
  const key = entry.kind === 'shard' ? entry.archive_key : entry.key
  const size = typeof entry.size_bytes === 'number' ? String(entry.size_bytes) : '-'
  return `${entry.kind}\t${key}\t${size}`
}

/** HEADs in flight for `-l`. */
const HEAD_CONCURRENCY = 16

export const manifestLs: Command = {
  name: 'manifest ls',
  usage: 'manifest ls <manifest> [--raw] [--expand-shards] [-l] [--human-readable] [--json]',
  summary: "list a manifest's entries",
  description: `Prints the entries of <manifest>, one per line: kind, key (a shard's archive key) and
size in bytes ('-' when unknown), separated by tabs. Refs are resolved: the entries of its parts
and of every manifest it references come in their place, each manifest read once.
An archive key (.tar, .tar.gz) lists the shard's internal manifest.
With -l, each object an entry names is read (a HEAD, ${HEAD_CONCURRENCY} at a time): the line is its kind,
last-modified date (UTC), size and key, as ls -l prints them; a shard member shows its archive's
date and its own size; an object that does not exist shows 'missing'.

Examples:
  s3x manifest ls training/123/samples/manifest.jsonl
  s3x manifest ls s3://datasets/training/123/samples/manifest.jsonl -l
  s3x manifest ls training/123/samples/manifest.jsonl --expand-shards --json > flat.jsonl`,
  options: {
    raw: { type: 'boolean' },
    'expand-shards': { type: 'boolean' },
    long: { type: 'boolean', short: 'l' },
    'human-readable': { type: 'boolean' },
    json: { type: 'boolean' },
  },
  optionHelp: [
    ['--raw', "the manifest's own lines: manifest_ref entries are listed, not resolved"],
    ['--expand-shards', "each shard replaced by its members (from its archive's internal manifest)"],
    ['-l, --long', "each object's date (UTC) and size, read with a HEAD"],
    ['--human-readable', 'with -l: sizes as 3.0 KiB, 1.2 GiB'],
    ['--json', 'one compact JSON entry per line, as in a manifest; with -l: {kind, key, size, lastModified, etag}'],
  ],
  args: { min: 1, max: 1 },
  operands: { args: [['<manifest>', 'key']] },
  async run({ args, flags, store: getStore, output }) {
    const key = args[0] as string
    const store = getStore()
    let entries: AsyncIterable<ManifestEntry>
    if (store.isShard(key)) entries = store.getManifest(key).iterEntries()
    else if (flags.raw && flags['expand-shards'])
      entries = expandShards(store.context())(store.iterManifestEntries(key, { resolveRefs: false }))
    else if (flags['expand-shards']) entries = store.listManifestFiles(key)
    else entries = store.iterManifestEntries(key, { resolveRefs: !flags.raw })
    if (!flags.long) {
      for await (const entry of entries) await output.line(flags.json ? serializeEntry(entry) : entryLine(entry))
      return 0
    }
    const human = flags['human-readable'] === true
    const heads = entryHeads(store.context())
    for await (const object of mapAhead(entries, HEAD_CONCURRENCY, heads)) {
      await output.line(
        flags.json ? JSON.stringify(object) : longLine(object, { human, prefix: object.kind.padEnd(12), noDate: 'missing' }),
      )
    }
    return 0
  },
}

/** What `-l` prints of one entry. */
type EntryListing = { kind: ManifestEntry['kind'] } & ListedObject & { missing?: true }

/** HEADs the object an entry names (an archive once, however many members name it). */
function entryHeads(ctx: S3Context): (entry: ManifestEntry) => Promise<EntryListing> {
  const archives = new Map<string, Promise<ListedObject | undefined>>()
  return async (entry) => {
    const member = entry.kind === 'file' && typeof entry.archive_key === 'string' && typeof entry.member_path === 'string'
    const key = entry.kind === 'shard' ? entry.archive_key : entry.key
    let head: ListedObject | undefined
    if (member) {
      const archiveKey = entry.archive_key as string
      let pending = archives.get(archiveKey)
      if (pending === undefined) {
        pending = headListing(ctx, archiveKey)
        archives.set(archiveKey, pending)
      }
      const archive = await pending
      const size = typeof entry.size_bytes === 'number' ? entry.size_bytes : null
      head = archive && { key, size, lastModified: archive.lastModified, etag: null }
    } else {
      head = await headListing(ctx, key)
    }
    if (head === undefined) return { kind: entry.kind, key, size: null, lastModified: null, etag: null, missing: true }
    return { kind: entry.kind, ...head, key }
  }
}
