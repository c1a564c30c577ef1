/**
 * Delete planning and fences on arrays, without S3: what deleting a manifest's entries means
 * (loose objects once, archives of shards and of member entries, the manifests asked for, what is
 * outside the fence), the fence checks of a key and a prefix, and the key pattern. Carrying a plan
 * out against S3 is tested through the store (packages/store/src/delete.test.ts).
 */
import { describe, expect, it } from 'vitest'
import type { ManifestEntry } from '../format/entries.js'
import { DeleteRefusedError } from '../format/errors.js'
import { checkDeleteKey, checkDeletePrefix, deleteAll, matchingKeys, planDeletion } from './delete.js'

const entries: ManifestEntry[] = [
  { kind: 'file', key: 'ds/a.wav' },
  { kind: 'shard', archive_key: 'ds/shards/s-0.tar' },
  { kind: 'file', key: 'ds/shards/s-1.tar#m.wav', archive_key: 'ds/shards/s-1.tar', member_path: 'm.wav' },
  { kind: 'file', key: 'ds/a.wav' },
  { kind: 'shard', archive_key: 'ds/shards/s-0.tar' },
  { kind: 'file', key: 'elsewhere/b.wav' },
  { kind: 'shard', archive_key: 'elsewhere/s.tar' },
  { kind: 'file', key: 'ds/notes#1.txt' },
]

describe('planDeletion', () => {
  it('each loose object once, the archive of each shard and of each member entry, in the order first met', async () => {
    const plan = await planDeletion(entries, { fence: '' })
    expect(plan).toEqual({
      objects: ['ds/a.wav', 'elsewhere/b.wav', 'ds/notes#1.txt'],
      archives: ['ds/shards/s-0.tar', 'ds/shards/s-1.tar', 'elsewhere/s.tar'],
      manifests: [],
      outsideFence: [],
    })
  })

  it('keys outside the fence are left out and listed: objects, then archives, then manifests', async () => {
    const plan = await planDeletion(entries, { fence: 'ds/', manifests: () => ['ds/manifest.jsonl', 'other/manifest.jsonl'] })
    expect(plan.objects).toEqual(['ds/a.wav', 'ds/notes#1.txt'])
    expect(plan.archives).toEqual(['ds/shards/s-0.tar', 'ds/shards/s-1.tar'])
    expect(plan.manifests).toEqual(['ds/manifest.jsonl'])
    expect(plan.outsideFence).toEqual(['elsewhere/b.wav', 'elsewhere/s.tar', 'other/manifest.jsonl'])
  })

  it('the manifests are asked for once the entries are read (a traversal has filled its visited set by then), each once', async () => {
    const visited = new Set<string>()
    async function* traversal(): AsyncGenerator<ManifestEntry> {
      visited.add('ds/manifests/part-1.jsonl')
      yield { kind: 'file', key: 'ds/x' }
      visited.add('ds/manifests/part-2.jsonl')
    }
    const plan = await planDeletion(traversal(), { fence: 'ds', manifests: () => ['ds/manifest.jsonl', ...visited, 'ds/manifest.jsonl'] })
    expect(plan.manifests).toEqual(['ds/manifest.jsonl', 'ds/manifests/part-1.jsonl', 'ds/manifests/part-2.jsonl'])
  })

  it('a fence is a folder: `ds` holds `ds` and `ds/…`, not `dsx/…`', async () => {
    const plan = await planDeletion(
      [
        { kind: 'file', key: 'ds' },
        { kind: 'file', key: 'ds/in' },
        { kind: 'file', key: 'dsx/out' },
      ],
      { fence: 'ds' },
    )
    expect(plan.objects).toEqual(['ds', 'ds/in'])
    expect(plan.outsideFence).toEqual(['dsx/out'])
  })
})

describe('fences', () => {
  it('checkDeleteKey refuses an empty key and one outside the fence, naming them', () => {
    expect(() => checkDeleteKey('ds/a', 'ds')).not.toThrow()
    expect(() => checkDeleteKey('anything', '')).not.toThrow()
    expect(() => checkDeleteKey('', '')).toThrow(DeleteRefusedError)
    let error: unknown
    try {
      checkDeleteKey('other/a', 'ds/')
    } catch (caught) {
      error = caught
    }
    expect(error).toBeInstanceOf(DeleteRefusedError)
    expect(error).toMatchObject({ key: 'other/a', fence: 'ds/' })
  })

  it('checkDeletePrefix refuses the whole bucket and prefixes outside the fence; the fence itself is listed as a folder', () => {
    for (const prefix of ['', '/', '//']) expect(() => checkDeletePrefix(prefix, '')).toThrow(/whole bucket/)
    expect(checkDeletePrefix('ds/x/', '')).toBe('ds/x/')
    expect(checkDeletePrefix('ds', 'ds/')).toBe('ds/')
    expect(checkDeletePrefix('ds/x', 'ds')).toBe('ds/x')
    expect(() => checkDeletePrefix('dsx/', 'ds')).toThrow(DeleteRefusedError)
    expect(() => checkDeletePrefix('d', 'ds')).toThrow(/outside "ds"/)
  })
})

describe('matchingKeys and a dry run', () => {
  it('keeps the keys a pattern matches anywhere; a g or y RegExp does not carry lastIndex between keys', async () => {
    const keys = ['a.wav', 'b.txt', 'c.wav', 'd.wav']
    expect(await Array.fromAsync(matchingKeys(/\.wav$/g)(keys))).toEqual(['a.wav', 'c.wav', 'd.wav'])
    expect(await Array.fromAsync(matchingKeys(/wav/y)(['wav1', 'wav2', 'x-wav']))).toEqual(['wav1', 'wav2'])
    expect(await Array.fromAsync(matchingKeys('^b')(keys))).toEqual(['b.txt'])
    expect(await Array.fromAsync(matchingKeys(undefined)(keys))).toEqual(keys)
  })

  it('deleteAll with dryRun counts and sends nothing (no client is even needed)', async () => {
    const ctx = { client: undefined as never, bucket: 'unused' }
    expect(await deleteAll(ctx, { dryRun: true })(['a', 'b', 'c'])).toBe(3)
  })
})
