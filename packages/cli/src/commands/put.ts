/**
 * `s3x put <file | dir> <prefix>`: uploads a file as `<prefix>/<name>`, or every regular file
 * under a folder as `<prefix>/<path relative to the folder>`, `--concurrency` at a time (one PUT
 * each, multipart when large; size and ETag from the upload). Prints each key uploaded. With
 * `--manifest <key>`, their entries are then written to that manifest: replacing it, or with
 * `--append` as a new part appended atomically (`append_parts`). Symbolic links are skipped. The
 * write flags (`--sse`, `--storage-class`, `--metadata`, …; see `write-flags.ts`) apply to the
 * objects and to the manifest.
 *
 * @example
 * ```sh
 * s3x put ./clips training/123/samples --manifest training/123/samples/manifest.jsonl --append --sse aws:kms
 * ```
 */
import { type FileEntry, putObjects, serializeEntry } from 's3exchange'
import { parsePositiveInteger, UsageError } from '../args.js'
import type { Command } from '../command.js'
import { joinKey, listLocalFiles } from '../local-files.js'
import { formatBytes } from '../output.js'
import { WRITE_FLAG_HELP, WRITE_FLAGS, writeOptionsFromFlags } from '../write-flags.js'

export const put: Command = {
  name: 'put',
  usage: 'put <file | dir> <prefix> [--manifest <key>] [--append] [--concurrency N] [write flags] [--json]',
  summary: 'upload a file or a folder (and write their entries to a manifest)',
  description: `Uploads <file> as <prefix>/<its name>, or every regular file under <dir> as
<prefix>/<its path relative to dir>. Prints each key uploaded (with --json, each entry as a
manifest line). With --manifest, their entries are then written to that manifest: it is
replaced, or with --append they go to a new part that is appended to it atomically.
Symbolic links are skipped, never followed. The write flags (storage class, encryption, metadata,
tags, ...) apply to every object written, the manifest included.

Examples:
  s3x put clip.wav training/123/samples
  s3x put clip.wav s3://datasets/training/123/samples
  s3x put ./clips training/123/samples --manifest training/123/samples/manifest.jsonl --append
  s3x put ./clips training/123/samples --sse aws:kms --sse-kms-key-id alias/datasets --metadata team=asr`,
  options: {
    manifest: { type: 'string' },
    append: { type: 'boolean' },
    concurrency: { type: 'string' },
    json: { type: 'boolean' },
    ...WRITE_FLAGS,
  },
  optionHelp: [
    ['--manifest <key>', 'write the entries of the uploaded objects to this manifest (replacing it)'],
    ['--append', 'with --manifest: append them as a new part instead (append_parts)'],
    ['--concurrency N', 'uploads at once (default 16)'],
    ['--json', 'print each entry as a manifest line instead of its key'],
    ...WRITE_FLAG_HELP,
  ],
  args: { min: 2, max: 2 },
  operands: {
    args: [
      ['<file | dir>', 'path'],
      ['<prefix>', 'prefix'],
    ],
    keyFlags: ['manifest'],
  },
  async run({ args, flags, store: getStore, output }) {
    const [source, prefix] = args as [string, string]
    if (flags.append && flags.manifest === undefined) throw new UsageError('--append needs --manifest <key>', 'put')
    const concurrency =
      flags.concurrency === undefined ? 16 : parsePositiveInteger(String(flags.concurrency), '--concurrency', 'put', 'concurrency')
    const writeOptions = writeOptionsFromFlags(flags, 'put')
    const { files, skipped } = await listLocalFiles(source)
    for (const path of skipped) output.note(`skipped ${path} (not a regular file)`)
    if (files.length === 0) throw new Error(`no files to upload in ${source}`)
    const store = getStore()
    const items = files.map((file) => ({ key: joinKey(prefix, file.relativePath), data: file.path }))
    const entries: FileEntry[] = []
    const totalBytes = files.reduce((sum, file) => sum + file.size, 0)
    const progress = output.progress('put', { total: files.length, totalBytes, unit: 'files' })
    // The library's progress: the bytes of every part as it goes up, each file once written.
    const upload = putObjects(store.context(), { concurrency, inferId: store.inferId, ...writeOptions, onProgress: progress.report })
    try {
      for await (const entry of upload(items)) {
        entries.push(entry)
        await output.line(flags.json ? serializeEntry(entry) : entry.key)
      }
    } finally {
      progress.done()
    }
    const bytes = entries.reduce((sum, entry) => sum + (entry.size_bytes ?? 0), 0)
    output.note(`uploaded ${entries.length} file(s), ${formatBytes(bytes)}`)
    const manifest = flags.manifest
    if (typeof manifest === 'string') {
      const result = await store.writeManifest(manifest, entries, { mode: flags.append ? 'append_parts' : 'overwrite', ...writeOptions })
      if ('parts' in result) output.note(`appended ${result.entries} entries to ${manifest} (${result.parts.join(', ')})`)
      else output.note(`wrote ${result.entries} entries to ${manifest}`)
    }
    return 0
  },
}
