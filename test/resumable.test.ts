/**
 * Resumable reads through real connection resets (issue 5, "Done when"): a loopback proxy in
 * front of the local S3 cuts GET responses after chosen numbers of body bytes. Reading a 64 MiB
 * shard (plain tar and tar.gz, written by the library's own writer) through 3 resets gives every
 * member with the right bytes out of exactly 4 GETs; the object replaced between attempts is a
 * typed error, never spliced bytes; a 4th reset with the default 3 attempts, or any reset with
 * `resumeAttempts: 0`, fails with a typed error. No S3 mocking: faults happen on the wire only.
 * These are about one GET resumed, so the stores read with one GET per object (`rangeConcurrency:
 * 0`); the ranges of a parallel ranged read are resumed the same way (`s3/ranged-reads.test.ts`).
 */
import { createHash, randomBytes } from 'node:crypto'
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { type ProxiedRequest, type ProxyAction, type S3Proxy, startS3Proxy } from '@s3exchange/testing'
import { useTestS3 } from '@s3exchange/testing/vitest'
import {
  type EntryWithBody,
  getObjectBody,
  ObjectChangedError,
  S3ExchangeStore,
  S3RequestError,
  type ShardEntry,
  ShardReadError,
} from 's3exchange'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'

const MiB = 1024 * 1024
const s3 = useTestS3()
let store: S3ExchangeStore

/** 64 members of 1 MiB of random bytes: a 64 MiB archive. */
interface Member {
  path: string
  data: Uint8Array
  sha256: string
}
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex')
const makeMembers = (count: number, size: number): Member[] =>
  Array.from({ length: count }, (_, i) => {
    const data = randomBytes(size)
    return { path: `sample-${String(i).padStart(3, '0')}.bin`, data, sha256: sha256(data) }
  })
const members = makeMembers(64, MiB)
const items = (list: Member[]) => list.map((m) => ({ source: m.data, member_path: m.path }))

let plainTar: ShardEntry
let gzipTar: ShardEntry

beforeAll(async () => {
  store = new S3ExchangeStore({ client: s3.client, bucket: s3.bucket })
  // Written straight to the server, with the library's own shard writer.
  plainTar = (await store.putShardArchive(s3.key('shards/plain.tar'), items(members), { compression: null })).entry
  gzipTar = (await store.putShardArchive(s3.key('shards/gzip.tar.gz'), items(members), { compression: 'gzip' })).entry
})

// ------------------------------------------------------------------------------------ helpers

const proxies: S3Proxy[] = []
const clients: S3Client[] = []

afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy()
  await Promise.all(proxies.splice(0).map((proxy) => proxy.stop()))
})

/** The path a path-style request for `key` has. */
const pathOf = (key: string) => `/${s3.bucket}/${key}`
const isGetOf = (request: ProxiedRequest, key: string) =>
  request.method === 'GET' && new URL(request.url, 'http://x').pathname === pathOf(key)

/**
 * A proxy that cuts the first GETs of `key` after `cuts[i]` body bytes (of that GET's own body),
 * and a store whose client goes through it. `between(n)` runs before GET number n (1-based) of
 * `key` is forwarded, and the request waits for it.
 */
async function faultyStore(key: string, cuts: number[], between?: (n: number) => Promise<void>) {
  let gets = 0
  const proxy = await startS3Proxy({
    target: s3.s3.endpoint,
    intercept: async (request): Promise<ProxyAction | undefined> => {
      if (!isGetOf(request, key)) return undefined
      const n = ++gets
      await between?.(n)
      const cut = cuts[n - 1]
      return cut === undefined ? undefined : { resetAfterBytes: cut }
    },
  })
  proxies.push(proxy)
  const client = s3.s3.createClient({ endpoint: proxy.endpoint })
  clients.push(client)
  return {
    proxy,
    client,
    store: new S3ExchangeStore({ client, bucket: s3.bucket, rangeConcurrency: 0 }),
    getsOf: () => proxy.requests.filter((r) => isGetOf(r, key)),
  }
}

async function etagOf(key: string): Promise<string> {
  const head = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }))
  expect(head.ETag).toMatch(/^".+"$/)
  return head.ETag as string
}

/** Every member read to the end: path and sha256, in order; the first error stops the reading. */
async function readMembers(objects: AsyncIterable<EntryWithBody>): Promise<{ read: { path: string; sha256: string }[]; error: unknown }> {
  const read: { path: string; sha256: string }[] = []
  try {
    for await (const { entry, body } of objects) {
      const bytes = await body.bytes()
      read.push({ path: entry.kind === 'file' ? (entry.member_path ?? entry.key) : entry.kind, sha256: sha256(bytes) })
    }
  } catch (error) {
    return { read, error }
  }
  return { read, error: undefined }
}

/**
 * The resumed GETs asked for the rest of the same version: `Range: bytes=<next>-` moving forward
 * by no more than each cut delivered (bytes still buffered in the HTTP client when a connection
 * breaks are lost with it, so a resume may start a little before the cut), and `If-Match` on the
 * ETag of the first answer.
 */
function expectResumedAfter(gets: ProxiedRequest[], cuts: number[], etag: string): void {
  expect(gets[0]?.headers.range).toBeUndefined()
  expect(gets[0]?.headers['if-match']).toBeUndefined()
  let previous = 0
  for (let i = 1; i < gets.length; i++) {
    const headers = gets[i]?.headers ?? {}
    expect(headers['if-match']).toBe(etag)
    const start = Number(/^bytes=(\d+)-$/.exec(String(headers.range))?.[1])
    expect(start).toBeGreaterThan(previous)
    expect(start - previous).toBeLessThanOrEqual(cuts[i - 1] as number)
    previous = start
  }
}

const expected = members.map((m) => ({ path: m.path, sha256: m.sha256 }))

// ------------------------------------------------------------------------------------ archives

describe('a 64 MiB shard streamed by iterObjects through 3 connection resets', () => {
  // Cut 5 MiB into the first GET, then a few MiB (and odd bytes) into each resumed range.
  const cuts = [5 * MiB, 7 * MiB + 333, 3 * MiB + 4099]

  it.each([
    ['plain tar', () => plainTar],
    ['tar.gz', () => gzipTar],
  ])('%s: every member with the right bytes, out of 4 GETs (1 + 3 resumed with Range and If-Match)', async (_name, shard) => {
    const entry = shard()
    const faulty = await faultyStore(entry.archive_key, cuts)
    const { read, error } = await readMembers(faulty.store.iterObjects([entry]))
    expect(error).toBeUndefined()
    expect(read).toStrictEqual(expected)
    expect(faulty.proxy.resets).toBe(3)
    const gets = faulty.getsOf()
    expect(gets).toHaveLength(4)
    expectResumedAfter(gets, cuts, await etagOf(entry.archive_key))
  })

  it('the archive replaced between attempts: a typed error naming the archive, never spliced bytes', async () => {
    // An archive of its own, and a replacement of exactly the same layout and size: a resume
    // without If-Match would splice the new bytes in and still parse as a valid tar.
    const key = s3.key('shards/replaced.tar')
    await store.putShardArchive(key, items(members), { compression: null })
    const etag = await etagOf(key)
    const replacement = makeMembers(64, MiB)
    let replacedEtag = ''
    const faulty = await faultyStore(key, [5 * MiB + 777], async (n) => {
      // After the first GET was cut, before the resumed one reaches the server: replace the object.
      if (n !== 2) return
      await store.putShardArchive(key, items(replacement), { compression: null })
      replacedEtag = await etagOf(key)
    })
    const { read, error } = await readMembers(faulty.store.iterObjects([{ kind: 'shard', archive_key: key, compression: null }]))

    expect(replacedEtag).not.toBe('')
    expect(replacedEtag).not.toBe(etag)
    // The failure is typed and names the archive; its cause is the ObjectChangedError.
    expect(error).toBeInstanceOf(ShardReadError)
    expect((error as ShardReadError).archiveKey).toBe(key)
    const changed = (error as ShardReadError).cause
    expect(changed).toBeInstanceOf(ObjectChangedError)
    expect((changed as ObjectChangedError).key).toBe(key)
    // Every member that came out is the original one; the rest never came out.
    expect(read.length).toBeGreaterThan(0)
    expect(read.length).toBeLessThan(members.length)
    expect(read).toStrictEqual(expected.slice(0, read.length))
    // The resumed GET was pinned to the first version, refused, and not retried.
    const gets = faulty.getsOf()
    expect(gets).toHaveLength(2)
    expect(gets[1]?.headers['if-match']).toBe(etag)
  })

  it('a 4th reset with the default 3 attempts: a typed error, and the iteration does not finish', async () => {
    const cutsOf4 = [2 * MiB, 2 * MiB + 1, 2 * MiB + 2, 2 * MiB + 3]
    const faulty = await faultyStore(plainTar.archive_key, cutsOf4)
    const { read, error } = await readMembers(faulty.store.iterObjects([plainTar]))
    expect(error).toBeInstanceOf(ShardReadError)
    expect((error as ShardReadError).archiveKey).toBe(plainTar.archive_key)
    // Its cause: the GetObject of the archive that broke once more than it may be resumed.
    const cause = (error as ShardReadError).cause
    expect(cause).toBeInstanceOf(S3RequestError)
    expect(cause).toMatchObject({ key: plainTar.archive_key, operation: 'GetObject' })
    expect(read.length).toBeLessThan(members.length)
    expect(read).toStrictEqual(expected.slice(0, read.length))
    // 1 GET + 3 resumptions, all cut; no 5th.
    expect(faulty.proxy.resets).toBe(4)
    const gets = faulty.getsOf()
    expect(gets).toHaveLength(4)
    expectResumedAfter(gets, cutsOf4, await etagOf(plainTar.archive_key))
  })
})

// ------------------------------------------------------------------------------------ loose objects

describe('a loose 20 MiB object read with getObject through connection resets', () => {
  const data = randomBytes(20 * MiB)
  const key = () => s3.key('loose/big.bin')

  beforeAll(async () => {
    await store.putObject(key(), data)
  })

  it('3 resets: the whole object comes back, out of 4 GETs resumed with Range and If-Match', async () => {
    const cuts = [3 * MiB, 4 * MiB + 1, 5 * MiB + 2]
    const faulty = await faultyStore(key(), cuts)
    const body = await faulty.store.getObject(key())
    expect(body.size).toBe(data.byteLength)
    const bytes = await body.bytes()
    expect(bytes.byteLength).toBe(data.byteLength)
    expect(Buffer.compare(Buffer.from(bytes), data)).toBe(0)
    expect(faulty.proxy.resets).toBe(3)
    const gets = faulty.getsOf()
    expect(gets).toHaveLength(4)
    expectResumedAfter(gets, cuts, await etagOf(key()))
  })

  it('4 resets with the default 3 attempts: S3RequestError naming the key, no bytes handed over', async () => {
    const cuts = [MiB, MiB, MiB, MiB]
    const faulty = await faultyStore(key(), cuts)
    const body = await faulty.store.getObject(key())
    const error = await body.bytes().then(
      (bytes) => bytes,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(S3RequestError)
    expect((error as S3RequestError).key).toBe(key())
    expect((error as S3RequestError).operation).toBe('GetObject')
    expect(faulty.proxy.resets).toBe(4)
    expect(faulty.getsOf()).toHaveLength(4)
  })

  it('replaced between attempts: ObjectChangedError naming the key', async () => {
    const changing = s3.key('loose/changing.bin')
    await store.putObject(changing, data)
    const faulty = await faultyStore(changing, [2 * MiB], async (n) => {
      if (n === 2) await store.putObject(changing, randomBytes(data.byteLength))
    })
    const body = await faulty.store.getObject(changing)
    const error = await body.bytes().then(
      (bytes) => bytes,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(ObjectChangedError)
    expect((error as ObjectChangedError).key).toBe(changing)
    expect(faulty.getsOf()).toHaveLength(2)
  })

  it('resumeAttempts: 0 (core getObjectBody): the first reset fails the read, with no second GET', async () => {
    const faulty = await faultyStore(key(), [3 * MiB])
    const body = await getObjectBody({ client: faulty.client, bucket: s3.bucket }, key(), { resumeAttempts: 0 })
    const error = await body.bytes().then(
      (bytes) => bytes,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(S3RequestError)
    expect((error as S3RequestError).key).toBe(key())
    expect(faulty.proxy.resets).toBe(1)
    expect(faulty.getsOf()).toHaveLength(1)
  })
})
