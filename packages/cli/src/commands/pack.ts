/**
 * `s3x pack <dir> <shard-prefix> --manifest <key>`: packs every regular file under a folder into
 * shard archives under `<shard-prefix>` (plain tar, or tar.gz with `--gzip`), each file's path
 * relative to `<dir>` becoming its `member_path` (so `s3x get` restores the tree), streamed into
 * S3 with no temporary file (`shardInto`). A new archive starts at `--max-entries` members or
 * `--max-bytes` of data. The shards are then published to the manifest: appended as one new part
 * in one atomic update (`writeManifestParts`) by default, or replacing it with `--overwrite`.
 * If packing fails midway, nothing is published: a `PublishError` names the archives already uploaded
 * (`uploadedKeys`).
 *
 * @example
 * ```sh
 * s3x pack ./clips training/123/samples/shards --manifest training/123/samples/manifest.jsonl --max-bytes 1G --gzip
 * ```
 */
import { inferId, PublishError, type ShardEntry, type ShardItem, shardInto, writeManifestParts } from 's3exchange'
import { parsePositiveInteger, parseSizeFlag, UsageError } from '../args.js'
import type { Command } from '../command.js'
import { listLocalFiles } from '../local-files.js'
import { formatBytes } from '../output.js'

/** Default most members per archive. */
const DEFAULT_MAX_ENTRIES = 10_000
/** Default most member bytes per archive. */
const DEFAULT_MAX_BYTES = 1024 ** 3

export const pack: Command = {
  name: 'pack',
  usage: 'pack <dir> <shard-prefix> --manifest <key> [--max-entries N] [--max-bytes SIZE] [--gzip] [--overwrite] [--json]',
  summary: 'pack a folder into shard archives and publish them to a manifest',
  description: `Packs every regular file under <dir> into tar shard archives under <shard-prefix>, each
file's path relative to <dir> becoming its member_path, and publishes the shards to the
manifest: appended as a new part, atomically, or replacing it with --overwrite.
A new archive starts when the next file would pass --max-entries members or --max-bytes of data.
SIZE is a number of bytes with an optional unit: 512, 10k, 64MiB, 1G (k/M/G/T and KiB/MiB/GiB/TiB
are powers of 1024, kB/MB/GB/TB powers of 1000). Prints each archive written
(archive key, members, bytes). Symbolic links are skipped, never followed.

Example:
  s3x pack ./clips training/123/samples/shards --manifest training/123/samples/manifest.jsonl --max-bytes 1G`,
  options: {
    manifest: { type: 'string' },
    'max-entries': { type: 'string' },
    'max-bytes': { type: 'string' },
    gzip: { type: 'boolean' },
    overwrite: { type: 'boolean' },
    json: { type: 'boolean' },
  },
  optionHelp: [
    ['--manifest <key>', 'the manifest to publish the shards to (required)'],
    ['--max-entries N', `most members per archive (default ${DEFAULT_MAX_ENTRIES})`],
    ['--max-bytes SIZE', 'most member bytes per archive (default 1GiB)'],
    ['--gzip', 'write .tar.gz archives (default: plain .tar)'],
    ['--overwrite', 'replace the manifest with the new shards (default: append them as a part)'],
    ['--json', 'print one JSON report at the end'],
  ],
  args: { min: 2, max: 2 },
  operands: {
    args: [
      ['<dir>', 'path'],
      ['<shard-prefix>', 'prefix'],
    ],
    keyFlags: ['manifest'],
  },
  async run({ args, flags, store: getStore, output }) {
    const [dir, prefix] = args as [string, string]
    const manifest = flags.manifest
    if (typeof manifest !== 'string') throw new UsageError('pack needs --manifest <key>', 'pack')
    const maxEntries =
      flags['max-entries'] === undefined
        ? DEFAULT_MAX_ENTRIES
        : parsePositiveInteger(String(flags['max-entries']), '--max-entries', 'pack', 'maxEntries')
    const maxBytes =
      flags['max-bytes'] === undefined ? DEFAULT_MAX_BYTES : parseSizeFlag(String(flags['max-bytes']), '--max-bytes', 'pack', 'maxBytes')
    const { files, skipped } = await listLocalFiles(dir)
    for (const path of skipped) output.note(`skipped ${path} (not a regular file)`)
    if (files.length === 0) throw new Error(`no files to pack in ${dir}`)
    const store = getStore()
    const ctx = store.context()

    const progress = output.progress('pack', { total: files.length, unit: 'files' })
    async function* items(): AsyncGenerator<ShardItem> {
      for (const file of files) {
        yield { source: file.path, member_path: file.relativePath, id: inferId(file.relativePath), size_bytes: file.size }
        progress.tick(1, file.size)
      }
    }
    const shards: ShardEntry[] = []
    try {
      for await (const shard of shardInto(ctx, { prefix, maxEntries, maxBytes, compression: flags.gzip ? 'gzip' : null })(items())) {
        shards.push(shard)
        progress.detail(`${shards.length} shard(s)`)
        if (!flags.json) await output.line(`${shard.archive_key}\t${shard.count ?? '-'}\t${shard.size_bytes ?? '-'}`)
      }
    } catch (error) {
      if (shards.length === 0) throw error
      throw new PublishError(
        manifest,
        shards.map((shard) => shard.archive_key),
        error,
      )
    } finally {
      progress.done()
    }

    let parts: string[] = []
    if (flags.overwrite) {
      await store.writeManifest(manifest, shards, { mode: 'overwrite' })
    } else {
      parts = (await writeManifestParts(ctx, manifest)(shards)).parts
    }
    const bytes = files.reduce((sum, file) => sum + file.size, 0)
    const mode = flags.overwrite ? 'overwrite' : 'append_parts'
    if (flags.json) {
      await output.json({ manifest, mode, files: files.length, bytes, shards, parts })
    } else {
      const how = flags.overwrite ? `wrote ${manifest}` : `appended to ${manifest} as ${parts.join(', ')}`
      output.note(`packed ${files.length} file(s), ${formatBytes(bytes)}, into ${shards.length} shard(s); ${how}`)
    }
    return 0
  },
}
