/** objectKeys and withKeyPrefix on arrays, without S3: the key of what each entry names, and Python's prefix filter. */
import { describe, expect, it } from 'vitest'
import type { FileEntry, ManifestEntry, ShardEntry } from '../format/entries.js'
import { objectKeys, withKeyPrefix } from './object-keys.js'

describe('objectKeys', () => {
  it("a file's key, a shard's archive key, a ref's manifest key", async () => {
    const entries: ManifestEntry[] = [
      { kind: 'file', key: 'a.wav' },
      { kind: 'shard', archive_key: 's.tar' },
      { kind: 'manifest_ref', key: 'm.jsonl' },
    ]
    expect(await Array.fromAsync(objectKeys()(entries))).toEqual(['a.wav', 's.tar', 'm.jsonl'])
  })
})

describe('withKeyPrefix', () => {
  it('files by key (or the virtual key of a member without one), shards by `archive_key#`', async () => {
    const entries: (FileEntry | ShardEntry)[] = [
      { kind: 'file', key: 'ds/a.wav' },
      { kind: 'file', key: '', archive_key: 'ds/s.tar', member_path: 'm.wav' },
      { kind: 'file', key: 'other/b.wav' },
      { kind: 'shard', archive_key: 'ds/t.tar' },
    ]
    const keep = async (prefix: string) =>
      (await Array.fromAsync(withKeyPrefix(prefix)(entries))).map((e) => (e.kind === 'shard' ? e.archive_key : e.key || e.member_path))
    expect(await keep('ds/')).toEqual(['ds/a.wav', 'm.wav', 'ds/t.tar'])
    expect(await keep('ds/s.tar#')).toEqual(['m.wav'])
    expect(await keep('ds/t.tar#')).toEqual(['ds/t.tar'])
    expect(await keep('zz')).toEqual([])
  })
})
