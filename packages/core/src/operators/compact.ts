/**
 * `compactInto(ctx, dst, opts)`: the sink that writes the entries it receives to one flat
 * manifest at `dst` (streamed, a multipart upload when large; see `writeManifestObject`), dropping
 * `manifest_ref`s and, with `expandShards`, replacing each shard by its internal manifest's
 * entries (with `archive_key`), counted as Python counts them: `totalEntries` is every entry read,
 * `resolvedRefs` the refs dropped (refs resolved before this stage are inlined and not counted),
 * `expandedShards` the member entries written for expanded shards, `removedEntries` always 0.
 *
 * @example
 * ```ts
 * import { pipe } from 'it-pipe'
 * import { compactInto, expandRefs, readManifest } from '@s3exchange/core'
 *
 * const report = await pipe(readManifest(ctx, 'ds/manifest.jsonl'), expandRefs(ctx), compactInto(ctx, 'ds/compact.jsonl'))
 * console.log(report.totalEntries)
 * ```
 */
import { listedMemberEntry } from '../archive/internal-manifest.js'
import { readInternalManifest } from '../archive/scan-archive.js'
import type { ManifestEntry } from '../format/entries.js'
import type { S3Context } from '../s3/context.js'
import { type WriteOptions, withWriteOptions } from '../s3/write-options.js'
import { writeManifestObject } from './write-manifest-object.js'

/** Options for {@link compactInto}; the write options apply to the compacted manifest. */
export interface CompactIntoOptions extends WriteOptions {
  /** Replace each shard entry by its internal manifest's entries (with `archive_key`). Default false. */
  expandShards?: boolean
}

/** What a compaction did, as Python reports it. */
export interface CompactReport {
  totalEntries: number
  removedEntries: number
  resolvedRefs: number
  expandedShards: number
}

/** Writes the entries it receives as one flat manifest at `dst`; see the module comment. */
export function compactInto(ctx: S3Context, dst: string, options: CompactIntoOptions = {}) {
  const output = withWriteOptions(ctx, options)
  return async function compactIntoSink(entries: AsyncIterable<ManifestEntry> | Iterable<ManifestEntry>): Promise<CompactReport> {
    const report: CompactReport = { totalEntries: 0, removedEntries: 0, resolvedRefs: 0, expandedShards: 0 }
    async function* compacted(): AsyncGenerator<ManifestEntry> {
      for await (const entry of entries) {
        report.totalEntries++
        if (entry.kind === 'manifest_ref') {
          report.resolvedRefs++
          continue
        }
        if (entry.kind === 'shard' && options.expandShards) {
          for (const member of await readInternalManifest(ctx, entry)) {
            report.expandedShards++
            yield listedMemberEntry(member, entry.archive_key)
          }
          continue
        }
        yield entry
      }
    }
    await writeManifestObject(output, dst, compacted())
    return report
  }
}
