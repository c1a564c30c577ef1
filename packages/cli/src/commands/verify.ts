/**
 * `s3x verify <manifest>`: checks that a dataset is intact. Walks the manifest and every manifest
 * its refs reach (a ref to a missing manifest is a problem, and the walk goes on), checks every
 * loose object (exists; size, ETag and `sha256` as the entry says) `--concurrency` at a time, and
 * reads every shard archive to the end, checking it against its entry and its internal manifest
 * (see `checks.ts`). Prints a report (or `--json`), and exits 1 on any problem.
 *
 * @example
 * ```sh
 * s3x verify training/123/samples/manifest.jsonl
 * # ok: 2 manifests, 0 loose files, 4 archives (1000 members), 5.2 MiB read; no problems
 * ```
 */
import { type FileEntry, InvalidManifestError, type ManifestNotFoundError, type ShardEntry } from 's3exchange'
import { parsePositiveInteger } from '../args.js'
import { type ArchiveExpectations, checkArchive, checkLooseObject, type Problem } from '../checks.js'
import type { Command } from '../command.js'
import { formatBytes, oneLine } from '../output.js'
import { TaskPool } from '../pool.js'
import { walkManifest } from '../walk.js'

/** What `verify` reports. */
export interface VerifyReport {
  manifest: string
  ok: boolean
  /** Manifests read, the root and its parts included. */
  manifests: number
  /** Loose objects checked. */
  files: number
  /** Archives read (each once, however many entries name it). */
  archives: number
  /** Shard entries. */
  shards: number
  /** Archive members read. */
  members: number
  /** Bytes of the objects and archives checked. */
  bytes: number
  problems: Problem[]
}

export const verify: Command = {
  name: 'verify',
  usage: 'verify <manifest> [--concurrency N] [--json]',
  summary: 'check that every object and archive a manifest references is intact',
  description: `Checks <manifest> and every manifest its refs reach:
  - every loose object exists, with the size and ETag its entry gives (size_bytes, etag);
  - every shard archive exists, with the size and ETag its entry gives (size_bytes, meta.etag),
    and reads to the end (every member streamed);
  - each archive's internal manifest agrees with the archive: every listed member present with
    its size_bytes (and offset); members not listed, and listed members missing, are problems;
  - entries that carry sha256 are hashed and compared.
Prints a report, and exits 1 if anything is wrong.

Example:
  s3x verify training/123/samples/manifest.jsonl`,
  options: { concurrency: { type: 'string' }, json: { type: 'boolean' } },
  optionHelp: [
    ['--concurrency N', 'objects checked at once (default 16; archives: a quarter of it, at least 1)'],
    ['--json', 'print the report as one JSON object'],
  ],
  args: { min: 1, max: 1 },
  operands: { args: [['<manifest>', 'key']] },
  async run({ args, flags, store, output }) {
    const manifest = args[0] as string
    const concurrency =
      flags.concurrency === undefined ? 16 : parsePositiveInteger(String(flags.concurrency), '--concurrency', 'verify', 'concurrency')
    const ctx = store().context()
    const report: VerifyReport = { manifest, ok: true, manifests: 0, files: 0, archives: 0, shards: 0, members: 0, bytes: 0, problems: [] }
    const walk = { manifests: 0, maxDepth: 0 }
    const archives = new Map<string, ArchiveExpectations>()
    const expectations = (archiveKey: string) => {
      const expected = archives.get(archiveKey) ?? { archiveKey, shards: [], members: [] }
      archives.set(archiveKey, expected)
      return expected
    }
    const progress = output.progress('verify', { unit: 'checks' })
    const loose = new TaskPool(concurrency)
    try {
      try {
        const onMissingRef = (error: ManifestNotFoundError) => report.problems.push({ key: error.key, problem: oneLine(error.message) })
        for await (const { entry } of walkManifest(ctx, manifest, walk, { onMissingRef })) {
          if (entry.kind === 'manifest_ref') continue
          if (entry.kind === 'shard') {
            report.shards++
            expectations(entry.archive_key).shards.push(entry as ShardEntry)
          } else if (typeof entry.archive_key === 'string' && typeof entry.member_path === 'string') {
            expectations(entry.archive_key).members.push(entry)
          } else {
            report.files++
            await loose.add(async () => {
              const result = await checkLooseObject(ctx, entry as FileEntry)
              report.bytes += result.bytes
              report.problems.push(...result.problems)
              progress.tick(1, result.bytes)
            })
          }
        }
      } catch (error) {
        // A manifest that cannot be read (other than the root, which fails the command): a problem.
        if (!(error instanceof InvalidManifestError) || walk.manifests === 0) throw error
        report.problems.push({ key: error.key ?? manifest, problem: oneLine(error.message) })
      }
      await loose.drain()
      progress.setTotal(report.files + archives.size)
      const pool = new TaskPool(Math.max(1, Math.floor(concurrency / 4)))
      for (const expected of archives.values()) {
        await pool.add(async () => {
          const result = await checkArchive(ctx, expected)
          report.archives++
          report.members += result.members
          report.bytes += result.bytes
          report.problems.push(...result.problems)
          progress.tick(1, result.bytes)
        })
      }
      await pool.drain()
    } finally {
      progress.done()
    }
    report.manifests = walk.manifests
    report.problems.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    report.ok = report.problems.length === 0
    if (flags.json) {
      await output.json(report)
    } else {
      for (const { key, problem } of report.problems) await output.line(`PROBLEM ${key}: ${problem}`)
      const summary = `${report.manifests} manifest(s), ${report.files} loose file(s), ${report.archives} archive(s) (${report.members} members), ${formatBytes(report.bytes)} checked`
      await output.line(report.ok ? `ok: ${summary}; no problems` : `FAILED: ${summary}; ${report.problems.length} problem(s)`)
    }
    return report.ok ? 0 : 1
  },
}
