/**
 * `s3x stat <manifest>`: what a manifest holds, from its lines alone (no object is read): entries
 * by kind, shard members (from each shard's `count`), manifests read (the root, its parts and
 * every manifest its refs reach, each once), the deepest ref chain, and the bytes the entries
 * declare (`size_bytes` of loose files and of archives).
 *
 * @example
 * ```sh
 * s3x stat training/123/samples/manifest.jsonl --json
 * # {"manifest":"training/123/samples/manifest.jsonl","manifests":2,"maxRefDepth":1,"entries":5,…}
 * ```
 */
import type { Command } from '../command.js'
import { formatBytes } from '../output.js'
import { walkManifest } from '../walk.js'

/** What `stat` reports. */
export interface ManifestStats {
  manifest: string
  /** Manifests read: the root, its parts, and every other manifest its refs reach. */
  manifests: number
  /** The deepest ref chain (0: the root references nothing). */
  maxRefDepth: number
  /** Every line read, of every manifest. */
  entries: number
  /** `file` entries (loose objects, and listed shard members). */
  files: number
  /** `file` entries that name a shard member (`archive_key` and `member_path`). */
  memberFiles: number
  shards: number
  refs: number
  /** Sum of the shards' `count`. */
  shardMembers: number
  /** Shards without a `count`. */
  shardsWithoutCount: number
  /** Sum of the known `size_bytes`: loose files and member files, and archives. */
  bytes: number
  fileBytes: number
  archiveBytes: number
  /** File and shard entries without `size_bytes`. */
  withoutSize: number
}

export const stat: Command = {
  name: 'stat',
  usage: 'stat <manifest> [--json]',
  summary: 'count the entries, shards, parts and bytes of a manifest',
  description: `Reads <manifest> and every manifest its refs reach (each once) and prints: manifests
read (the root and its parts), the deepest ref chain, entries by kind, shard members (from each
shard's count), and the bytes the entries declare (size_bytes). No object is read.

Example:
  s3x stat training/123/samples/manifest.jsonl`,
  options: { json: { type: 'boolean' } },
  optionHelp: [['--json', 'print the counts as one JSON object']],
  args: { min: 1, max: 1 },
  operands: { args: [['<manifest>', 'key']] },
  async run({ args, flags, store, output }) {
    const manifest = args[0] as string
    const walk = { manifests: 0, maxDepth: 0 }
    const stats: ManifestStats = {
      manifest,
      manifests: 0,
      maxRefDepth: 0,
      entries: 0,
      files: 0,
      memberFiles: 0,
      shards: 0,
      refs: 0,
      shardMembers: 0,
      shardsWithoutCount: 0,
      bytes: 0,
      fileBytes: 0,
      archiveBytes: 0,
      withoutSize: 0,
    }
    const progress = output.progress('stat', { unit: 'entries' })
    try {
      for await (const { entry } of walkManifest(store().context(), manifest, walk)) {
        stats.entries++
        progress.tick()
        if (entry.kind === 'manifest_ref') {
          stats.refs++
          continue
        }
        const size = typeof entry.size_bytes === 'number' ? entry.size_bytes : undefined
        if (size === undefined) stats.withoutSize++
        if (entry.kind === 'shard') {
          stats.shards++
          if (typeof entry.count === 'number') stats.shardMembers += entry.count
          else stats.shardsWithoutCount++
          stats.archiveBytes += size ?? 0
        } else {
          stats.files++
          if (typeof entry.archive_key === 'string' && typeof entry.member_path === 'string') stats.memberFiles++
          stats.fileBytes += size ?? 0
        }
      }
    } finally {
      progress.done()
    }
    stats.manifests = walk.manifests
    stats.maxRefDepth = walk.maxDepth
    stats.bytes = stats.fileBytes + stats.archiveBytes
    if (flags.json) {
      await output.json(stats)
      return 0
    }
    const rows: [string, string][] = [
      ['manifest', manifest],
      ['manifests', `${stats.manifests} (the root, its parts and the manifests its refs reach)`],
      ['max ref depth', String(stats.maxRefDepth)],
      ['entries', `${stats.entries} (${stats.files} files, ${stats.shards} shards, ${stats.refs} refs)`],
      [
        'shard members',
        `${stats.shardMembers}${stats.shardsWithoutCount ? ` (+ ${stats.shardsWithoutCount} shard(s) without a count)` : ''}${
          stats.memberFiles ? `; ${stats.memberFiles} member file entries` : ''
        }`,
      ],
      [
        'bytes',
        `${stats.bytes} (${formatBytes(stats.bytes)}: files ${formatBytes(stats.fileBytes)}, archives ${formatBytes(stats.archiveBytes)})${
          stats.withoutSize ? `; ${stats.withoutSize} entr${stats.withoutSize === 1 ? 'y' : 'ies'} without size_bytes` : ''
        }`,
      ],
    ]
    for (const [name, value] of rows) await output.line(`${name.padEnd(14)}${value}`)
    return 0
  },
}
