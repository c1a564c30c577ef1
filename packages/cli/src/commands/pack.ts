/**
 * `s3x pack <dir> <shard-prefix> --manifest <key>`: packs every regular file under a folder into
 * shard archives under `<shard-prefix>` (tar.gz, the library's one default; tar.zst with `--zstd`;
 * plain tar with `--compression none`), named as `shardInto` names them (`shard-<run id>-00000.tar.gz`), each
 * file's path relative to `<dir>` becoming its `member_path` (so `s3x get` restores the tree),
 * streamed into S3 with no temporary file (`shardInto`). A new archive starts at `--max-entries` members or
 * `--max-bytes` of data. The shards are then published to the manifest: appended as one new part
 * in one atomic update (`writeManifestParts`) by default, or replacing it with `--overwrite`.
 * If packing fails midway, nothing is published: a `PublishError` names the archives already uploaded
 * (`uploadedKeys`). The write flags (`--sse`, `--storage-class`, `--metadata`, …) apply to the
 * shards and to the manifest.
 *
 * @example
 * ```sh
 * s3x pack ./clips training/123/samples/shards --manifest training/123/samples/manifest.jsonl --max-bytes 1G --storage-class STANDARD_IA
 * s3x pack ./clips training/123/samples/shards --manifest training/123/samples/manifest.jsonl --zstd   # readers of this library only
 * ```
 */
import {
  type ArchiveCompression,
  DEFAULT_SHARD_COMPRESSION,
  inferId,
  PublishError,
  type ShardEntry,
  type ShardItem,
  shardInto,
  writeManifestParts,
} from 's3exchange'
import { type FlagValues, parsePositiveInteger, parseSizeFlag, UsageError } from '../args.js'
import type { Command } from '../command.js'
import { listLocalFiles } from '../local-files.js'
import { formatBytes } from '../output.js'
import { WRITE_FLAG_HELP, WRITE_FLAGS, writeOptionsFromFlags } from '../write-flags.js'

/** Default most members per archive. */
const DEFAULT_MAX_ENTRIES = 10_000
/** Default most member bytes per archive. */
const DEFAULT_MAX_BYTES = 1024 ** 3

export const pack: Command = {
  name: 'pack',
  usage:
    'pack <dir> <shard-prefix> --manifest <key> [--max-entries N] [--max-bytes SIZE] [--compression gzip|zstd|none | --gzip | --zstd] [--overwrite] [write flags] [--json]',
  summary: 'pack a folder into shard archives and publish them to a manifest',
  description: `Packs every regular file under <dir> into tar shard archives under <shard-prefix>
(shard-<run id>-00000.tar.gz, ...: gzip, what Python s3exchange reads too; .tar.zst with --zstd,
faster to read, Node 22.15 or later, not readable by Python s3exchange; plain .tar with
--compression none), each file's path relative to <dir> becoming its member_path, and publishes
the shards to the manifest: appended as a new part, atomically, or replacing it with --overwrite.
Compressed archives are seekable: one member is still one ranged GET. The write flags (storage
class, encryption, metadata, tags, ...) apply to the shards and the manifest.
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
    compression: { type: 'string' },
    gzip: { type: 'boolean' },
    zstd: { type: 'boolean' },
    overwrite: { type: 'boolean' },
    json: { type: 'boolean' },
    ...WRITE_FLAGS,
  },
  optionHelp: [
    ['--manifest <key>', 'the manifest to publish the shards to (required)'],
    ['--max-entries N', `most members per archive (default ${DEFAULT_MAX_ENTRIES})`],
    ['--max-bytes SIZE', 'most member bytes per archive (default 1GiB)'],
    ['--compression gzip|zstd|none', 'gzip: .tar.gz (the default); zstd: .tar.zst; none: plain .tar'],
    ['--gzip', 'the same as --compression gzip (the default)'],
    ['--zstd', 'the same as --compression zstd (Node >= 22.15; not readable by Python s3exchange)'],
    ['--overwrite', 'replace the manifest with the new shards (default: append them as a part)'],
    ['--json', 'print one JSON report at the end'],
    ...WRITE_FLAG_HELP,
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
    const compression = compressionFlag(flags)
    const writeOptions = writeOptionsFromFlags(flags, 'pack')
    const { files, skipped } = await listLocalFiles(dir)
    for (const path of skipped) output.note(`skipped ${path} (not a regular file)`)
    if (files.length === 0) throw new Error(`no files to pack in ${dir}`)
    const store = getStore()
    const ctx = store.context()

    const progress = output.progress('pack', { total: files.length, unit: 'files' })
    const items: ShardItem[] = files.map((file) => ({
      source: file.path,
      member_path: file.relativePath,
      id: inferId(file.relativePath),
      size_bytes: file.size,
    }))
    const shards: ShardEntry[] = []
    // The library's progress: files packed, and the archives' bytes as their parts go up.
    const pack = shardInto(ctx, { prefix, maxEntries, maxBytes, compression, ...writeOptions, onProgress: progress.report })
    try {
      for await (const shard of pack(items)) {
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
      await store.writeManifest(manifest, shards, { mode: 'overwrite', ...writeOptions })
    } else {
      parts = (await writeManifestParts(ctx, manifest, writeOptions)(shards)).parts
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

const COMPRESSIONS: Record<string, ArchiveCompression> = { gzip: 'gzip', zstd: 'zstd', none: null }

/**
 * The archives' compression: `--compression gzip|zstd|none`, `--gzip` or `--zstd` (one of them),
 * by default the library's.
 */
function compressionFlag(flags: FlagValues): ArchiveCompression {
  const given: [flag: string, value: string][] = [
    ...(flags.gzip ? [['--gzip', 'gzip'] as [string, string]] : []),
    ...(flags.zstd ? [['--zstd', 'zstd'] as [string, string]] : []),
    ...(flags.compression === undefined
      ? []
      : [[`--compression ${String(flags.compression)}`, String(flags.compression)] as [string, string]]),
  ]
  if (new Set(given.map(([, value]) => value)).size > 1) {
    throw new UsageError(`${given.map(([flag]) => flag).join(' and ')} contradict each other`, 'pack')
  }
  const [first] = given
  if (first === undefined) return DEFAULT_SHARD_COMPRESSION
  const compression = COMPRESSIONS[first[1]]
  if (compression === undefined) throw new UsageError(`--compression must be gzip, zstd or none, not '${first[1]}'`, 'pack')
  return compression
}
