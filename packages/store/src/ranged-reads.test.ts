/**
 * Parallel ranged reads as a store user meets them, through the proxy's request log: `rangeSize`
 * and `rangeConcurrency` set per store and per call (and checked), `getObject`, `downloadObject`,
 * `downloadObjects`, and a shard archive streamed member by member (plain tar and tar.gz) by
 * `Shard.iterObjects` and the store's `iterObjects`, each byte for byte, as ranged GETs pinned with If-Match.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { unquoteEtag } from '@s3exchange/core/internals'
import type { RecordedRequest } from '@s3exchange/testing'
import { useS3Proxy, useTestS3 } from '@s3exchange/testing/vitest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConfigurationError } from './index.js'
import { S3ExchangeStore } from './store.js'

const KiB = 1024
const RANGE = 64 * KiB
const s3 = useTestS3()
const via = useS3Proxy(s3)
const dir = mkdtempSync(join(tmpdir(), 's3x-ranged-'))
let store: S3ExchangeStore
let big: Buffer
let bigKey: string

beforeAll(async () => {
  store = new S3ExchangeStore({ client: via.client, bucket: s3.bucket, rangeSize: RANGE, rangeConcurrency: 3 })
  big = randomBytes(12 * RANGE + 321)
  bigKey = s3.key('big.bin')
  await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: bigKey, Body: big }))
})

afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** The GETs of `key` since `mark`. */
function getsOf(key: string, mark: number): RecordedRequest[] {
  return via.proxy.requests
    .slice(mark)
    .filter((r) => r.method === 'GET' && decodeURIComponent(r.url.split('?')[0] ?? '').endsWith(`/${key}`))
}

/** Checks that `gets` read an object as ranges: the first a plain GET, the others ranges pinned to the object's ETag. */
function expectRanged(gets: RecordedRequest[], etag: string | undefined, count: number): void {
  expect(gets).toHaveLength(count)
  expect(gets.filter((g) => typeof g.headers.range === 'string')).toHaveLength(count - 1)
  const pinned = gets.filter((g) => g.headers['if-match'] !== undefined)
  expect(pinned).toHaveLength(count - 1)
  expect(pinned.every((g) => unquoteEtag(String(g.headers['if-match'])) === etag)).toBe(true)
}

/** GETs of an object read in ranges: the first answer (its first range), then the rest. */
const rangesFor = (size: number, range = RANGE) => 1 + Math.ceil((size - range) / range)

describe('options', () => {
  it('are the store’s, and a call’s own win', async () => {
    expect(store.ranges).toEqual({ rangeSize: RANGE, rangeConcurrency: 3 })
    expect(new S3ExchangeStore({ client: via.client, bucket: s3.bucket }).ranges).toEqual({
      rangeSize: 8 * 1024 * KiB,
      rangeConcurrency: 4,
    })
    const mark = via.proxy.requests.length
    const body = await store.getObject(bigKey, { rangeConcurrency: 0 })
    expect(Buffer.from(await body.bytes()).equals(big)).toBe(true)
    const gets = getsOf(bigKey, mark)
    expect(gets).toHaveLength(1)
    expect(gets[0]?.headers.range).toBeUndefined()
  })

  it('out of range are ConfigurationErrors naming the option, from the constructor and from a call', async () => {
    expect(() => new S3ExchangeStore({ client: via.client, bucket: s3.bucket, rangeSize: 1000 })).toThrow(ConfigurationError)
    expect(() => new S3ExchangeStore({ client: via.client, bucket: s3.bucket, rangeSize: 1000 })).toThrow(/rangeSize/)
    await expect(store.getObject(bigKey, { rangeConcurrency: -1 })).rejects.toThrow(/rangeConcurrency/)
    await expect(store.getObject(bigKey, { rangeConcurrency: -1 })).rejects.toBeInstanceOf(ConfigurationError)
  })
})

describe('reads of a large object', () => {
  it('getObject', async () => {
    const mark = via.proxy.requests.length
    const body = await store.getObject(bigKey)
    expect(body.size).toBe(big.length)
    expect(Buffer.from(await body.bytes()).equals(big)).toBe(true)
    expectRanged(getsOf(bigKey, mark), body.etag, rangesFor(big.length))
  })

  it('downloadObject and downloadObjects', async () => {
    let mark = via.proxy.requests.length
    const path = await store.downloadObject(bigKey, join(dir, 'one.bin'))
    expect(readFileSync(path).equals(big)).toBe(true)
    expect(getsOf(bigKey, mark)).toHaveLength(rangesFor(big.length))

    mark = via.proxy.requests.length
    const written = await store.downloadObjects([bigKey], join(dir, 'many'), { rangeSize: 2 * RANGE })
    expect(readFileSync(written.get(bigKey) as string).equals(big)).toBe(true)
    expect(getsOf(bigKey, mark)).toHaveLength(rangesFor(big.length, 2 * RANGE))
  })
})

describe.each([
  ['plain tar', null, 'shard.tar'],
  ['tar.gz', 'gzip', 'shard.tar.gz'],
] as const)('a shard archive, %s, streamed member by member', (_label, compression, name) => {
  const members = [
    { member_path: 'a.bin', source: randomBytes(5 * RANGE + 7) },
    { member_path: 'small.txt', source: Buffer.from('between two large members') },
    { member_path: 'b.bin', source: randomBytes(9 * RANGE + 11) },
  ]
  let key: string
  let archiveSize: number
  let archiveEtag: string | undefined

  beforeAll(async () => {
    key = s3.key(name)
    // Incompressible members: the tar.gz is about as large as the tar, and read as ranges too.
    const shard = await store.putShardArchive(key, members, { compression })
    const head = await store.getObjectMetadata(shard.archiveKey)
    archiveSize = head.ContentLength as number
    archiveEtag = unquoteEtag(head.ETag)
    expect(archiveSize).toBeGreaterThan(14 * RANGE)
  })

  it('by Shard.iterObjects: every member byte for byte, the archive read as ranges pinned to its ETag', async () => {
    const mark = via.proxy.requests.length
    const seen = new Map<string, Buffer>()
    for await (const { entry, body } of store.getShard(key).iterObjects())
      seen.set(entry.member_path as string, Buffer.from(await body.bytes()))
    for (const member of members) expect(seen.get(member.member_path)?.equals(member.source)).toBe(true)
    expectRanged(getsOf(key, mark), archiveEtag, rangesFor(archiveSize))
  })

  it('by iterObjects over a manifest naming it', async () => {
    const manifestKey = s3.key(`${name}.jsonl`)
    await store.putSharded(manifestKey, [store.getShard(key).entry], { updateMode: 'overwrite' })
    const mark = via.proxy.requests.length
    const seen = new Map<string, Buffer>()
    for await (const { entry, body } of store.iterObjects(manifestKey, { rangeConcurrency: 2 })) {
      seen.set(entry.member_path as string, Buffer.from(await body.bytes()))
    }
    for (const member of members) expect(seen.get(member.member_path)?.equals(member.source)).toBe(true)
    expectRanged(getsOf(key, mark), archiveEtag, rangesFor(archiveSize))
  })
})
