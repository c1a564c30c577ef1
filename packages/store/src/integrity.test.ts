/**
 * Integrity: the writers record each object's and member's SHA-256, and reads with
 * `verify: true` check `size_bytes` and `sha256` against the bytes they read, failing with
 * `IntegrityError` (naming the key) on loose objects, streamed shard members (one archive at a
 * time and prefetched), members read by range, and Python-style entries (size only). Objects are
 * corrupted in place on the local S3, the way a bad copy or a rewrite would.
 */
import { createHash, randomBytes } from 'node:crypto'
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3'
import { buildTar } from '@s3exchange/testing'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { beforeAll, describe, expect, it } from 'vitest'
import { type EntryWithBody, type FileEntry, IntegrityError, type ManifestEntry, readInternalManifest, type ShardEntry } from './index.js'
import { S3ExchangeStore } from './store.js'

const s3 = useTestS3()
let store: S3ExchangeStore

beforeAll(() => {
  store = new S3ExchangeStore({ client: s3.client, bucket: s3.bucket })
})

const sha = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex')

async function bytesOf(key: string): Promise<Buffer> {
  const response = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }))
  return Buffer.from(await (response.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray())
}

async function put(key: string, data: Uint8Array | string): Promise<void> {
  await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: data }))
}

/** Reads every body; resolves to the keys and digests read, and the error that stopped the read, if any. */
async function readAll(items: AsyncIterable<EntryWithBody>): Promise<{ read: [string, string][]; error: unknown }> {
  const read: [string, string][] = []
  try {
    for await (const { entry, body } of items) read.push([entry.key as string, sha(await body.bytes())])
  } catch (error) {
    return { read, error }
  }
  return { read, error: undefined }
}

describe('writers record sha256', () => {
  it('putObject and the members of putShardArchive, plain and gzip: the SHA-256 of the bytes written', async () => {
    const data = randomBytes(5000)
    expect((await store.putObject(s3.key('rec/loose.bin'), data)).sha256).toBe(sha(data))
    for (const compression of [null, 'gzip'] as const) {
      const members = [
        { member_path: 'a.bin', source: randomBytes(300) },
        { member_path: `${'ü/long/'.repeat(20)}b.bin`, source: randomBytes(70_000) },
      ]
      const shard = await store.putShardArchive(s3.key(`rec/shard-${compression}.tar${compression ? '.gz' : ''}`), members, { compression })
      const listed = await readInternalManifest(store.context(), shard.entry)
      expect(listed.map((entry) => entry.sha256)).toEqual(members.map((member) => sha(member.source)))
    }
  })
})

describe('verify: true', () => {
  const loose = Array.from({ length: 6 }, (_, i) => ({ name: `l${i}.bin`, data: randomBytes(1000 + i * 40_000) }))
  const members = Array.from({ length: 12 }, (_, i) => ({ member_path: `m/${i}.bin`, source: randomBytes(200 + i * 9000) }))
  let root: string
  let plain: ShardEntry
  let gzip: ShardEntry

  beforeAll(async () => {
    const entries: ManifestEntry[] = []
    for (const { name, data } of loose) entries.push(await store.putObject(s3.key(`v/${name}`), data))
    plain = (await store.putShardArchive(s3.key('v/plain.tar'), members, { compression: null })).entry
    gzip = (await store.putShardArchive(s3.key('v/seekable.tar.gz'), members)).entry
    root = s3.key('v/manifest.jsonl')
    await store.writeManifest(root, [...entries, plain, gzip])
  })

  it('intact data written by this library reads through, every byte, one archive at a time and prefetched', async () => {
    const expected = [
      ...loose.map(({ name, data }) => [s3.key(`v/${name}`), sha(data)]),
      ...[plain, gzip].flatMap((shard) => members.map((member) => [`${shard.archive_key}#${member.member_path}`, sha(member.source)])),
    ]
    for (const shardConcurrency of [1, 2, 4]) {
      expect(await readAll(store.iterObjects(root, { verify: true, shardConcurrency }))).toEqual({ read: expected, error: undefined })
    }
    // Streamed loose bodies too (nothing buffered ahead).
    expect(await readAll(store.iterObjects(root, { verify: true, maxBufferedBytes: 0 }))).toEqual({ read: expected, error: undefined })
  })

  it('a loose object rewritten with other bytes of the same size: IntegrityError on sha256, naming the key; unnoticed without verify', async () => {
    const key = s3.key('v/rewritten.bin')
    const entry = await store.putObject(key, randomBytes(4000))
    const other = randomBytes(4000)
    await put(key, other)
    const manifest = s3.key('v/rewritten.jsonl')
    await store.writeManifest(manifest, [entry])
    for (const maxBufferedBytes of [undefined, 0]) {
      const { read, error } = await readAll(store.iterObjects(manifest, { verify: true, maxBufferedBytes }))
      expect(read).toEqual([])
      expect(error).toBeInstanceOf(IntegrityError)
      expect(error).toMatchObject({ key, field: 'sha256', expected: entry.sha256, actual: sha(other) })
    }
    expect(await readAll(store.iterObjects(manifest))).toEqual({ read: [[key, sha(other)]], error: undefined })
  })

  it('a loose object of another size: IntegrityError on size_bytes', async () => {
    const key = s3.key('v/grown.bin')
    const entry = await store.putObject(key, Buffer.from('short'))
    await put(key, Buffer.from('longer!'))
    const manifest = s3.key('v/grown.jsonl')
    await store.writeManifest(manifest, [entry])
    const { error } = await readAll(store.iterObjects(manifest, { verify: true }))
    expect(error).toBeInstanceOf(IntegrityError)
    expect(error).toMatchObject({ key, field: 'size_bytes', expected: 5, actual: 7 })
  })

  it('entries without sha256 (as Python writes them) are checked on their size; a digest in capitals matches', async () => {
    const key = s3.key('v/python.bin')
    await put(key, 'twelve bytes')
    const manifest = s3.key('v/python.jsonl')
    await store.writeManifest(manifest, [
      { kind: 'file', key, id: 'python', meta: null, content_type: null, size_bytes: 12, etag: null },
      { kind: 'file', key, id: 'caps', sha256: sha('twelve bytes').toUpperCase() },
    ])
    expect((await readAll(store.iterObjects(manifest, { verify: true }))).read).toHaveLength(2)
    await store.writeManifest(manifest, [{ kind: 'file', key, size_bytes: 13 }])
    const { error } = await readAll(store.iterObjects(manifest, { verify: true }))
    expect(error).toMatchObject({ name: 'IntegrityError', key, field: 'size_bytes', expected: 13, actual: 12 })
  })

  it('a flipped byte in a member of a plain shard: IntegrityError naming the virtual key, after the members before it', async () => {
    const key = s3.key('v/flipped.tar')
    const shard = (await store.putShardArchive(key, members, { compression: null })).entry
    const victim = (await readInternalManifest(store.context(), shard))[5] as FileEntry & { offset: number }
    const archive = await bytesOf(key)
    archive[victim.offset + 7] = (archive[victim.offset + 7] as number) ^ 0xff
    await put(key, archive)
    const manifest = s3.key('v/flipped.jsonl')
    await store.writeManifest(manifest, [shard])
    const virtual = `${key}#${victim.member_path}`
    const wantBefore = members.slice(0, 5).map((member) => [`${key}#${member.member_path}`, sha(member.source)])
    for (const shardConcurrency of [1, 2]) {
      const { read, error } = await readAll(store.iterObjects(manifest, { verify: true, shardConcurrency }))
      expect(read).toEqual(wantBefore)
      expect(error).toBeInstanceOf(IntegrityError)
      expect(error).toMatchObject({ key: virtual, field: 'sha256', expected: victim.sha256 })
    }
    // Read by range (a few members of the archive, located by its index): checked the same way.
    const fresh = new S3ExchangeStore({ client: s3.client, bucket: s3.bucket })
    const ranged = await readAll(fresh.iterObjectsFromKeys([`${key}#m/1.bin`, virtual], { verify: true }))
    expect(ranged.read).toEqual([[`${key}#m/1.bin`, sha(members[1]?.source as Buffer)]])
    expect(ranged.error).toMatchObject({ name: 'IntegrityError', key: virtual, field: 'sha256' })
    // Streamed (all members asked for).
    const all = members.map((member) => `${key}#${member.member_path}`)
    const streamed = await readAll(fresh.iterObjectsFromKeys(all, { verify: true }))
    expect(streamed.read).toEqual(wantBefore)
    expect(streamed.error).toMatchObject({ name: 'IntegrityError', key: virtual })
    // Without verify, the flipped bytes come through.
    expect((await readAll(store.iterObjects(manifest))).read).toHaveLength(members.length)
  })

  it('a gzip shard whose internal manifest lists a wrong sha256 and a wrong size: IntegrityError for each, by member', async () => {
    const key = s3.key('v/lying.tar.gz')
    const files = [
      { name: 'ok.txt', data: 'fine' },
      { name: 'bad-digest.txt', data: 'digest' },
      { name: 'bad-size.txt', data: 'size' },
    ]
    const lines = files.map(({ name, data }) =>
      JSON.stringify({
        kind: 'file',
        key: `${key}#${name}`,
        member_path: name,
        size_bytes: name === 'bad-size.txt' ? 99 : Buffer.byteLength(data),
        sha256: name === 'bad-digest.txt' ? sha('something else') : sha(data),
      }),
    )
    await put(key, await buildTar([{ name: '__manifest__.jsonl', data: `${lines.join('\n')}\n` }, ...files], { gzip: true }))
    const shard: ShardEntry = { kind: 'shard', archive_key: key, format: 'tar', compression: 'gzip', count: 3 }
    const manifest = s3.key('v/lying.jsonl')
    await store.writeManifest(manifest, [shard])
    const first = await readAll(store.iterObjects(manifest, { verify: true }))
    expect(first.read).toEqual([[`${key}#ok.txt`, sha('fine')]])
    expect(first.error).toMatchObject({ name: 'IntegrityError', key: `${key}#bad-digest.txt`, field: 'sha256', actual: sha('digest') })
    const single = await readAll(store.iterObjectsFromKeys([`${key}#bad-size.txt`], { verify: true }))
    expect(single.error).toMatchObject({ name: 'IntegrityError', key: `${key}#bad-size.txt`, field: 'size_bytes', expected: 99, actual: 4 })
  })
})
