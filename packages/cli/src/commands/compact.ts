/**
 * `s3x compact <src> <dst>`: writes a flat copy of a manifest (refs resolved, each manifest read
 * once; with `--expand-shards`, each shard replaced by its members' entries) to `<dst>`, streamed,
 * and prints what was done, counted as Python counts it.
 *
 * @example
 * ```sh
 * s3x compact training/123/samples/manifest.jsonl training/123/samples/manifest-flat.jsonl
 * # compacted training/123/samples/manifest.jsonl → training/123/samples/manifest-flat.jsonl: 1004 entries read, 0 shard members expanded
 * ```
 */
import type { Command } from '../command.js'
import { WRITE_FLAG_HELP, WRITE_FLAGS, writeOptionsFromFlags } from '../write-flags.js'

export const compact: Command = {
  name: 'compact',
  usage: 'compact <src> <dst> [--expand-shards] [write flags] [--json]',
  summary: 'write a flat copy of a manifest (refs resolved)',
  description: `Writes the entries of <src>, refs resolved (its parts and referenced manifests inlined,
each read once), to the manifest <dst>, replacing it. With --expand-shards, each shard is replaced
by the entries of its members (with archive_key and member_path). The write flags (storage
class, encryption, metadata, tags, ...) apply to <dst>.

Example:
  s3x compact training/123/samples/manifest.jsonl training/123/samples/manifest-flat.jsonl`,
  options: { 'expand-shards': { type: 'boolean' }, json: { type: 'boolean' }, ...WRITE_FLAGS },
  optionHelp: [
    ['--expand-shards', "replace each shard by its members' entries"],
    ['--json', 'print the report as JSON'],
    ...WRITE_FLAG_HELP,
  ],
  args: { min: 2, max: 2 },
  operands: {
    args: [
      ['<src>', 'key'],
      ['<dst>', 'key'],
    ],
  },
  async run({ args, flags, store, output }) {
    const [src, dst] = args as [string, string]
    const writeOptions = writeOptionsFromFlags(flags, 'compact')
    const report = await store().compactManifest(src, dst, { expandShards: flags['expand-shards'] === true, ...writeOptions })
    if (flags.json) await output.json({ src, dst, ...report })
    else
      await output.line(`compacted ${src} → ${dst}: ${report.totalEntries} entries read, ${report.expandedShards} shard members expanded`)
    return 0
  },
}
