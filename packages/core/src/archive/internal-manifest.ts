/**
 * A shard's internal manifest: parsed as Python parses it (every entry a `file`; an entry without
 * `key` gets the virtual key of its `member_path`), entries enriched as Python's readers enrich
 * them, and indexed by member path. No I/O: the bytes come from whoever read the archive.
 *
 * @example
 * ```ts
 * import { parseInternalManifest } from '@s3exchange/core/internals'
 *
 * const entries = await parseInternalManifest([Buffer.from('{"kind":"file","member_path":"a.wav"}\n')], 'ds/s.tar', '__manifest__.jsonl')
 * entries[0].key // 'ds/s.tar#a.wav'
 * ```
 */
import type { FileEntry } from '../format/entries.js'
import { validateEntry } from '../format/entries.js'
import { InvalidManifestError, ShardReadError } from '../format/errors.js'
import { isBlankLine, type SplitLinesOptions, splitLines } from '../format/jsonl.js'
import { virtualKey } from '../format/keys.js'
import { toShardReadError } from './tar-reader.js'

/**
 * Parses an internal manifest as Python does: every entry must be a `file`; an entry without
 * `key` gets the virtual key of its `member_path`.
 */
export async function parseInternalManifest(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  archiveKey: string,
  path: string,
  options: SplitLinesOptions = {},
): Promise<FileEntry[]> {
  const location = virtualKey(archiveKey, path)
  const entries: FileEntry[] = []
  let lineNumber = 0
  try {
    for await (const lines of splitLines(source, { ...options, key: location })) {
      for (const line of lines) {
        lineNumber++
        if (isBlankLine(line)) continue
        entries.push(parseInternalEntry(line, archiveKey, { key: location, lineNumber }))
      }
    }
  } catch (error) {
    if (error instanceof InvalidManifestError) throw error
    throw toShardReadError(error, archiveKey, path)
  }
  return entries
}

function parseInternalEntry(line: string, archiveKey: string, location: { key: string; lineNumber: number }): FileEntry {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch (error) {
    throw new InvalidManifestError(`invalid JSON: ${(error as Error).message}`, { ...location, cause: error })
  }
  const raw = value as Record<string, unknown> | null
  if (
    raw &&
    typeof raw === 'object' &&
    raw.kind === 'file' &&
    raw.key === undefined &&
    typeof raw.member_path === 'string' &&
    raw.member_path
  ) {
    raw.key = virtualKey(archiveKey, raw.member_path)
  }
  const entry = validateEntry(value, location)
  if (entry.kind !== 'file') {
    throw new ShardReadError(`internal manifest line ${location.lineNumber} is a '${entry.kind}' entry; only 'file' entries are allowed`, {
      archiveKey,
    })
  }
  return entry
}

/** An internal manifest entry as Python's `list_manifest_files` yields it. */
export function listedMemberEntry(entry: FileEntry, archiveKey: string): FileEntry {
  const enriched: FileEntry = { ...entry, archive_key: archiveKey, member_path: entry.member_path ?? '' }
  if (enriched.key === undefined) enriched.key = virtualKey(archiveKey, enriched.member_path ?? '')
  return enriched
}

/** The entry of a member met while streaming, as Python's `iter_objects` yields it. */
export function streamedMemberEntry(member: { name: string; size: number }, listed: FileEntry | undefined, archiveKey: string): FileEntry {
  const base: FileEntry = listed ?? ({ kind: 'file', member_path: member.name, size_bytes: member.size } as FileEntry)
  const enriched: FileEntry = { ...base, archive_key: archiveKey, member_path: base.member_path ?? member.name }
  if (enriched.key === undefined) enriched.key = virtualKey(archiveKey, member.name)
  return enriched
}

/** The entries by member path (the path a tar header names), for lookups while an archive streams. */
export function indexByPath(entries: FileEntry[]): Map<string, FileEntry> {
  const byPath = new Map<string, FileEntry>()
  for (const entry of entries) {
    const path = entry.member_path ?? entry.key
    if (path) byPath.set(path, entry)
  }
  return byPath
}
