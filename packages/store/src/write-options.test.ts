/**
 * The store's write options and SSE-C key, through the recording proxy in front of the test
 * server: the store's defaults reach every request of every write (putObject, writeManifest
 * overwrite and append_parts with its root, putShardArchive, putSharded, the ManifestWriter's loose
 * objects, shards, parts and root, compactManifest, Manifest.save and writeToS3); a call's options
 * override them; bad options are refused before anything is written; and a store's SSE-C key goes
 * with every read (getObject loose and by virtual key, iterObjects' loose fetches and archive
 * streams, archive heads, HEADs, resumed reads, the root read of an append, downloads). Where the
 * server enforces SSE-C, objects are read back through the store, and refused without the key.
 * Servers that refuse an encryption over plain HTTP (Ceph RGW by default) skip those tests, naming
 * the requirement.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inspect } from 'node:util'
import type { S3Client } from '@aws-sdk/client-s3'
import {
  expectedOptionHeaders,
  optionHeaders,
  probeWriteOptions,
  type RecordedRequest,
  rejection,
  requestKey,
  type S3Proxy,
  s3Operation,
  startS3Proxy,
  type WriteOptionSupport,
} from '@s3exchange/testing'
import { expectOptionsOnEveryRequest, requestsDuring, useTestS3 } from '@s3exchange/testing/vitest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  ConfigurationError,
  type ContextWriteOptions,
  type ManifestEntry,
  S3RequestError,
  type SseCustomerKey,
  type WriteOptions,
} from './index.js'
import { Manifest } from './manifest.js'
import { S3ExchangeStore } from './store.js'

const s3 = useTestS3()
const KMS_KEY_ID = process.env.S3X_TEST_KMS_KEY_ID || undefined
const SSE_C: SseCustomerKey = { key: randomBytes(32) }
const OTHER_SSE_C: SseCustomerKey = { key: randomBytes(32).toString('base64') }
let support: WriteOptionSupport
let proxy: S3Proxy
let client: S3Client
const clients: S3Client[] = []
const proxies: S3Proxy[] = []
let dir: string

beforeAll(async () => {
  support = await probeWriteOptions(s3.client, s3.bucket, s3.prefix, { kmsKeyId: KMS_KEY_ID })
  proxy = await startS3Proxy({ target: s3.s3.endpoint })
  proxies.push(proxy)
  client = s3.s3.createClient({ endpoint: proxy.endpoint })
  clients.push(client)
  dir = await mkdtemp(join(tmpdir(), 's3x-write-options-'))
})
afterAll(async () => {
  for (const each of clients) each.destroy()
  for (const each of proxies) await each.stop()
  if (dir) await rm(dir, { recursive: true, force: true })
})

type Kind = 'none' | 'kms' | 'sse-c'

/** The store options of each kind of encryption, with every other option. */
function storeOptions(kind: Kind): { writeOptions: ContextWriteOptions; sseCustomerKey?: SseCustomerKey } {
  const writeOptions: ContextWriteOptions = {
    storageClass: support.acceptedStorageClass,
    metadata: { team: 'asr' },
    tagging: { team: 'asr', stage: 'raw data' },
    cacheControl: 'max-age=600',
    contentEncoding: 'identity',
    acl: 'bucket-owner-full-control',
  }
  if (kind === 'kms') {
    return {
      writeOptions: {
        ...writeOptions,
        serverSideEncryption: 'aws:kms',
        sseKmsKeyId: KMS_KEY_ID ?? 'alias/s3x-test',
        bucketKeyEnabled: true,
      },
    }
  }
  if (kind === 'sse-c') return { writeOptions, sseCustomerKey: SSE_C }
  return { writeOptions }
}

/** What the requests must carry, for a store of these options. */
function sent(options: { writeOptions?: ContextWriteOptions; sseCustomerKey?: SseCustomerKey | undefined }): WriteOptions {
  return { ...options.writeOptions, sseCustomerKey: options.sseCustomerKey }
}

function skipUnlessAccepted(kind: Kind, skip: (note: string) => void): void {
  if (kind === 'kms' && support.sseKms === 'refused') {
    skip('needs a server that accepts SSE-KMS (Ceph RGW: a KMS backend, S3X_TEST_KMS_KEY_ID, and TLS or rgw_crypt_require_ssl off)')
  }
  if (kind === 'sse-c' && support.sseC === 'refused')
    skip('needs a server that accepts SSE-C (Ceph RGW: TLS, or rgw_crypt_require_ssl off)')
}

/** Runs `work` and returns the requests the proxy saw meanwhile. */
function requestsOf(work: () => Promise<unknown>, through: S3Proxy = proxy): Promise<RecordedRequest[]> {
  return requestsDuring(through, work)
}

const expectOnEveryRequest = expectOptionsOnEveryRequest

const WRITES = new Set(['PutObject', 'CreateMultipartUpload', 'UploadPart', 'CompleteMultipartUpload'])

describe.each(['none', 'kms', 'sse-c'] as const)("the store's write options reach every write (encryption: %s)", (kind) => {
  let store: S3ExchangeStore
  let options: WriteOptions
  const key = (name: string) => s3.key(`store-${kind}/${name}`)

  beforeAll(() => {
    const configured = storeOptions(kind)
    store = new S3ExchangeStore({ client, bucket: s3.bucket, ...configured })
    options = sent(configured)
  })

  it('putObject, and writeManifest: overwrite, then append_parts (a part, then the root read and written)', async ({ skip }) => {
    skipUnlessAccepted(kind, skip)
    const objects = await requestsOf(() => store.putObject(key('a.wav'), Buffer.from('a')))
    expect(expectOnEveryRequest(objects, options).get(key('a.wav'))).toEqual(['PutObject'])
    const entries: ManifestEntry[] = [{ kind: 'file', key: key('a.wav') }]
    const overwrite = await requestsOf(() => store.writeManifest(key('m/manifest.jsonl'), entries))
    expect(expectOnEveryRequest(overwrite, options).get(key('m/manifest.jsonl'))).toEqual(['PutObject'])
    const root = key('m/root.jsonl')
    const append = await requestsOf(() => store.writeManifest(root, entries, { mode: 'append_parts' }))
    const seen = expectOnEveryRequest(append, options)
    expect(seen.get(root)).toEqual(['GetObject', 'PutObject'])
    expect([...seen.entries()].filter(([k]) => k.includes('/manifests/part-')).map(([, ops]) => ops)).toEqual([['PutObject']])
  })

  it('putShardArchive (single PUT and multipart) and putSharded', async ({ skip }) => {
    skipUnlessAccepted(kind, skip)
    const small = key('shards/small.tar.gz')
    const large = key('shards/large.tar')
    const shards = await requestsOf(async () => {
      await store.putShardArchive(small, [{ source: randomBytes(100), member_path: 'a.bin' }])
      await store.putShardArchive(large, [{ source: randomBytes(6 * 1024 * 1024), member_path: 'b.bin' }])
    })
    const seen = expectOnEveryRequest(shards, options)
    expect(seen.get(small)?.filter((op) => op !== 'HeadObject')).toEqual(['PutObject'])
    expect(seen.get(large)?.filter((op) => op !== 'HeadObject')).toEqual([
      'CreateMultipartUpload',
      'UploadPart',
      'UploadPart',
      'CompleteMultipartUpload',
    ])
    const root = key('shards/manifest.jsonl')
    const sharded = await requestsOf(() =>
      store.putSharded(root, [{ kind: 'shard', archive_key: small, format: 'tar', compression: 'gzip' }]),
    )
    expect(expectOnEveryRequest(sharded, options).get(root)).toEqual(['GetObject', 'PutObject'])
  })

  it('the ManifestWriter: loose objects, shards, parts and the root (append_parts and overwrite)', async ({ skip }) => {
    skipUnlessAccepted(kind, skip)
    for (const mode of ['append_parts', 'overwrite'] as const) {
      const root = key(`writer-${mode}/manifest.jsonl`)
      const requests = await requestsOf(async () => {
        const writer = store.openManifestWriter(root, { mode, shardSize: { maxEntries: 2 }, partMaxEntries: 2 })
        await writer.putObject(key(`writer-${mode}/loose.txt`), Buffer.from('loose'))
        for (let i = 0; i < 3; i++) await writer.addToShard(`m/${i}.bin`, randomBytes(20))
        await writer.close()
      })
      const seen = expectOnEveryRequest(requests, options)
      const writes = [...seen.entries()].filter(([, ops]) => ops.some((op) => WRITES.has(op))).map(([k]) => k)
      expect(writes, mode).toContain(root)
      expect(writes, mode).toContain(key(`writer-${mode}/loose.txt`))
      expect(writes.filter((k) => k.includes('/shards/shard-')).length, mode).toBe(2)
      if (mode === 'append_parts') expect(writes.filter((k) => k.includes('/manifests/part-')).length).toBeGreaterThan(0)
    }
  })

  it('compactManifest, Manifest.save and Manifest.writeToS3', async ({ skip }) => {
    skipUnlessAccepted(kind, skip)
    const src = key('c/src.jsonl')
    await store.writeManifest(src, [{ kind: 'file', key: key('c/x.bin') }])
    const dst = key('c/dst.jsonl')
    const compaction = await requestsOf(() => store.compactManifest(src, dst))
    const seen = expectOnEveryRequest(compaction, options)
    expect(seen.get(src)).toEqual(['GetObject'])
    expect(seen.get(dst)).toEqual(['PutObject'])
    const saving = await requestsOf(() => Manifest.fromKey(store, key('c/saved.jsonl')).save([{ kind: 'file', key: key('c/y.bin') }]))
    expect(expectOnEveryRequest(saving, options).get(key('c/saved.jsonl'))).toEqual(['PutObject'])
    const static_ = await requestsOf(() => Manifest.writeToS3(store, key('c/static.jsonl'), [{ kind: 'file', key: key('c/z.bin') }]))
    expect(expectOnEveryRequest(static_, options).get(key('c/static.jsonl'))).toEqual(['PutObject'])
  })
})

describe("a call's options override the store's", () => {
  const key = (name: string) => s3.key(`override/${name}`)

  it("field by field; metadata and tags as a whole; a call's encryption replaces the store's", async ({ skip }) => {
    if (support.sseKms === 'refused' || support.sseC === 'refused') skip('needs a server that accepts SSE-KMS and SSE-C')
    const store = new S3ExchangeStore({ client, bucket: s3.bucket, ...storeOptions('kms') })
    const call: WriteOptions = { metadata: { run: '7' }, cacheControl: 'no-store', sseCustomerKey: OTHER_SSE_C }
    const { serverSideEncryption: _, sseKmsKeyId: __, bucketKeyEnabled: ___, ...unencrypted } = storeOptions('kms').writeOptions
    const want: WriteOptions = { ...unencrypted, metadata: { run: '7' }, cacheControl: 'no-store', sseCustomerKey: OTHER_SSE_C }
    const requests = await requestsOf(async () => {
      await store.putObject(key('a.bin'), Buffer.from('a'), call)
      await store.writeManifest(key('m.jsonl'), [{ kind: 'file', key: key('a.bin') }], call)
      await store.writeManifest(key('root.jsonl'), [{ kind: 'file', key: key('a.bin') }], { ...call, mode: 'append_parts' })
      await store.putShardArchive(key('s.tar'), [{ source: Buffer.from('x'), member_path: 'x' }], call)
      await store.compactManifest(key('m.jsonl'), key('flat.jsonl'), call)
      const writer = store.openManifestWriter(key('w.jsonl'), { ...call, shardSize: { maxEntries: 10 } })
      await writer.addToShard('x', Buffer.from('x'))
      await writer.close()
    })
    expect(requests.filter((request) => WRITES.has(s3Operation(request))).length).toBeGreaterThan(6)
    expectOnEveryRequest(requests, want)
  })

  it("the ManifestWriter's putObject: an object's own options over the writer's", async () => {
    const store = new S3ExchangeStore({
      client,
      bucket: s3.bucket,
      writeOptions: { metadata: { a: '1' }, storageClass: support.acceptedStorageClass },
    })
    const requests = await requestsOf(async () => {
      const writer = store.openManifestWriter(key('own.jsonl'), { cacheControl: 'no-cache' })
      await writer.putObject(key('own.bin'), Buffer.from('x'), { metadata: { b: '2' }, id: 'own' })
      await writer.close()
    })
    const put = requests.find((request) => requestKey(request) === key('own.bin'))
    expect(optionHeaders(put as RecordedRequest)).toStrictEqual({
      'x-amz-storage-class': support.acceptedStorageClass,
      'x-amz-meta-b': '2',
      'cache-control': 'no-cache',
    })
  })
})

describe('bad options are refused before anything is written', () => {
  const key = (name: string) => s3.key(`refused/${name}`)

  it('the constructor: ConfigurationError naming the option', () => {
    for (const [options, option] of [
      [{ writeOptions: { sseKmsKeyId: 'k' } }, 'sseKmsKeyId'],
      [{ writeOptions: { metadata: { naïve: 'x' } } }, 'metadata'],
      [{ writeOptions: { tagging: 'a=1&a=2' } }, 'tagging'],
      [{ sseCustomerKey: { key: randomBytes(16) } }, 'sseCustomerKey'],
      [{ writeOptions: { serverSideEncryption: 'aws:kms' as const }, sseCustomerKey: SSE_C }, 'sseCustomerKey'],
    ] as const) {
      let error: unknown
      try {
        new S3ExchangeStore({ client, bucket: s3.bucket, ...options })
      } catch (caught) {
        error = caught
      }
      expect(error, option).toBeInstanceOf(ConfigurationError)
      expect((error as ConfigurationError).option).toBe(option)
    }
  })

  it('each write call: ConfigurationError naming the option, and no request written', async () => {
    const store = new S3ExchangeStore({ client, bucket: s3.bucket })
    const bad: WriteOptions = { sseKmsKeyId: 'k' }
    const item = [{ source: Buffer.from('x'), member_path: 'x' }]
    const entries: ManifestEntry[] = [{ kind: 'file', key: key('x') }]
    const calls: [string, () => Promise<unknown>][] = [
      ['putObject', () => store.putObject(key('a'), Buffer.from('a'), bad)],
      ['writeManifest', () => store.writeManifest(key('m.jsonl'), entries, bad)],
      ['writeManifest append_parts', () => store.writeManifest(key('m.jsonl'), entries, { ...bad, mode: 'append_parts' })],
      ['putShardArchive', () => store.putShardArchive(key('s.tar'), item, bad)],
      ['putSharded', () => store.putSharded(key('m.jsonl'), [], bad)],
      ['compactManifest', () => store.compactManifest(key('m.jsonl'), key('flat.jsonl'), bad)],
      ['Manifest.writeToS3', () => Manifest.writeToS3(store, key('m.jsonl'), entries, bad)],
      ['openManifestWriter', async () => store.openManifestWriter(key('w.jsonl'), bad)],
      ['getObject (a bad SSE-C key)', () => store.getObject(key('a'), { sseCustomerKey: { key: 'short' } })],
    ]
    for (const [name, call] of calls) {
      const requests = await requestsOf(async () => {
        const error = await rejection(call())
        expect(error, name).toBeInstanceOf(ConfigurationError)
        expect((error as ConfigurationError).option, name).toMatch(/^(sseKmsKeyId|sseCustomerKey)$/)
      })
      expect(requests.map(s3Operation), name).toEqual([])
    }
  })
})

describe("a store's SSE-C key goes with every read", () => {
  let store: S3ExchangeStore
  const key = (name: string) => s3.key(`reads/${name}`)
  const loose = () => key('loose.bin')
  const plain = () => key('shards/plain.tar')
  const gzipped = () => key('shards/gz.tar.gz')
  const root = () => key('manifest.jsonl')
  const data = randomBytes(200_000)

  beforeAll(async () => {
    if (support.sseC === 'refused') return
    store = new S3ExchangeStore({ client, bucket: s3.bucket, sseCustomerKey: SSE_C })
    await store.putObject(loose(), data)
    const members = [
      { source: data.subarray(0, 1000), member_path: 'a.bin' },
      { source: data.subarray(1000, 150_000), member_path: 'b.bin' },
    ]
    // Other member paths in the second archive, so that a download of the whole manifest has no two files at one path.
    const inFolder = members.map((member) => ({ ...member, member_path: `z/${member.member_path}` }))
    const shards = [(await store.putShardArchive(plain(), members)).entry, (await store.putShardArchive(gzipped(), inFolder)).entry]
    await store.writeManifest(root(), [{ kind: 'file', key: loose() }, ...shards])
  })

  function skipUnlessAccepted(skip: (note: string) => void): void {
    if (support.sseC === 'refused') skip('needs a server that accepts SSE-C (Ceph RGW: TLS, or rgw_crypt_require_ssl off)')
  }

  /** Runs `read` and checks that every GET and HEAD it sent carries the key and nothing else does; returns the operations by key. */
  async function expectKeyOnEveryRead(read: () => Promise<unknown>, through: S3Proxy = proxy): Promise<Map<string, string[]>> {
    const requests = await requestsOf(read, through)
    expect(requests.length).toBeGreaterThan(0)
    return expectOnEveryRequest(requests, { sseCustomerKey: SSE_C })
  }

  it('getObject: a loose object, members by virtual key (ranged reads, archive heads), metadata and exists', async ({ skip }) => {
    skipUnlessAccepted(skip)
    const seen = await expectKeyOnEveryRead(async () => {
      expect(Buffer.from(await (await store.getObject(loose())).bytes()).equals(data)).toBe(true)
      for (const member of [`${plain()}#b.bin`, `${gzipped()}#z/b.bin`]) {
        const body = await store.getObject(member)
        expect(Buffer.from(await body.bytes()).equals(data.subarray(1000, 150_000)), member).toBe(true)
      }
      expect((await store.getObjectMetadata(loose())).ContentLength).toBe(data.byteLength)
      expect(await store.exists(loose())).toBe(true)
      expect(Buffer.from(await (await store.getShard(plain()).getMember('a.bin')).bytes()).equals(data.subarray(0, 1000))).toBe(true)
    })
    // A member read is ranged: the archive's head (its index), then the member's bytes.
    expect(seen.get(plain())?.every((op) => op === 'GetObject' || op === 'HeadObject')).toBe(true)
  })

  it('iterObjects (loose fetches and archive streams), listManifestFiles (archive heads), Shard.iterObjects, iterObjectsFromKeys', async ({
    skip,
  }) => {
    skipUnlessAccepted(skip)
    const seen = await expectKeyOnEveryRead(async () => {
      const objects = []
      for await (const { entry, body } of store.iterObjects(root())) objects.push([entry.key, (await body.bytes()).byteLength])
      expect(objects).toHaveLength(5)
      expect(await Array.fromAsync(store.listManifestFiles(root()))).toHaveLength(5)
      expect(await Array.fromAsync(store.getShard(gzipped()).iterObjects())).toHaveLength(2)
      const fromKeys = []
      for await (const { body } of store.iterObjectsFromKeys([loose(), `${plain()}#a.bin`])) fromKeys.push((await body.bytes()).byteLength)
      expect(fromKeys).toEqual([data.byteLength, 1000])
    })
    for (const k of [root(), loose(), plain(), gzipped()]) expect(seen.has(k), k).toBe(true)
  })

  it('downloads: downloadObject and downloadManifest', async ({ skip }) => {
    skipUnlessAccepted(skip)
    await expectKeyOnEveryRead(async () => {
      const path = await store.downloadObject(loose(), join(dir, 'one.bin'))
      expect((await readFile(path)).equals(data)).toBe(true)
      const paths = await store.downloadManifest(root(), join(dir, 'all'))
      expect(paths.size).toBe(5)
    })
  })

  it('a read cut mid-body is resumed with the key (Range and If-Match)', async ({ skip }) => {
    skipUnlessAccepted(skip)
    let gets = 0
    const cutting = await startS3Proxy({
      target: s3.s3.endpoint,
      intercept: (request) => (s3Operation(request) === 'GetObject' && gets++ === 0 ? { resetAfterBytes: 50_000 } : undefined),
    })
    proxies.push(cutting)
    const cutClient = s3.s3.createClient({ endpoint: cutting.endpoint })
    clients.push(cutClient)
    const cut = new S3ExchangeStore({ client: cutClient, bucket: s3.bucket, sseCustomerKey: SSE_C })
    await expectKeyOnEveryRead(async () => {
      expect(Buffer.from(await (await cut.getObject(loose())).bytes()).equals(data)).toBe(true)
    }, cutting)
    expect(cutting.resets).toBe(1)
    expect(cutting.requests[1]?.headers.range).toMatch(/^bytes=\d+-$/)
  })

  it('the root of an append is read with the key', async ({ skip }) => {
    skipUnlessAccepted(skip)
    const requests = await requestsOf(() =>
      store.writeManifest(key('appended.jsonl'), [{ kind: 'file', key: loose() }], { mode: 'append_parts' }),
    )
    const rootRead = requests.find((request) => requestKey(request) === key('appended.jsonl') && s3Operation(request) === 'GetObject')
    expect(optionHeaders(rootRead as RecordedRequest)).toStrictEqual(
      expectedOptionHeaders(rootRead as RecordedRequest, { sseCustomerKey: SSE_C }),
    )
  })

  it("per call: another key, or none (null); a store without a key reads with the call's", async ({ skip }) => {
    skipUnlessAccepted(skip)
    // (Where the server enforces SSE-C these fail: only the headers sent matter here.)
    const none = await requestsOf(() => store.getObjectMetadata(loose(), { sseCustomerKey: null }).catch(() => undefined))
    expect(optionHeaders(none[0] as RecordedRequest)).toStrictEqual({})
    const other = await requestsOf(() => store.getObjectMetadata(loose(), { sseCustomerKey: OTHER_SSE_C }).catch(() => undefined))
    expect(optionHeaders(other[0] as RecordedRequest)).toStrictEqual(
      expectedOptionHeaders(other[0] as RecordedRequest, { sseCustomerKey: OTHER_SSE_C }),
    )
    const keyless = new S3ExchangeStore({ client, bucket: s3.bucket })
    const given = await requestsOf(() => keyless.getObjectMetadata(loose(), { sseCustomerKey: SSE_C }))
    expect(optionHeaders(given[0] as RecordedRequest)).toStrictEqual(
      expectedOptionHeaders(given[0] as RecordedRequest, { sseCustomerKey: SSE_C }),
    )
  })

  it('where the server enforces SSE-C: without the key (or with another) the reads fail; with it they work', async ({ skip }) => {
    skipUnlessAccepted(skip)
    if (support.sseC !== 'enforced') skip(`needs a server that enforces SSE-C (this one: ${support.sseC})`)
    const keyless = new S3ExchangeStore({ client: s3.client, bucket: s3.bucket })
    const attempts: [string, () => Promise<unknown>][] = [
      ['getObject without a key', () => keyless.getObject(loose()).then((body) => body.bytes())],
      ['a member without a key', () => keyless.getObject(`${plain()}#a.bin`).then((body) => body.bytes())],
      ['getObjectMetadata with another key', () => store.getObjectMetadata(loose(), { sseCustomerKey: OTHER_SSE_C })],
      ['iterObjects without a key (the manifest is SSE-C too)', () => Array.fromAsync(keyless.iterObjects(root()))],
    ]
    for (const [name, attempt] of attempts) {
      const error = await rejection(attempt())
      // The refusal, typed: an S3RequestError (in a ShardReadError for an archive) with the server's 400 or 403.
      let cause: unknown = error
      while (cause instanceof Error && !(cause instanceof S3RequestError)) cause = cause.cause
      expect(cause, name).toBeInstanceOf(S3RequestError)
      expect([400, 403], name).toContain((cause as S3RequestError).statusCode)
    }
    const direct = new S3ExchangeStore({ client: s3.client, bucket: s3.bucket, sseCustomerKey: SSE_C })
    let bytes = 0
    for await (const { body } of direct.iterObjects(root())) bytes += (await body.bytes()).byteLength
    expect(bytes).toBe(data.byteLength + 2 * 150_000)
  })

  it('the key never prints: not in util.inspect of the store or its context', ({ skip }) => {
    skipUnlessAccepted(skip)
    const base64 = (SSE_C.key as Buffer).toString('base64')
    for (const shown of [
      inspect(store, { depth: 6 }),
      inspect(store.context(), { depth: 6 }),
      JSON.stringify({ ...store.context(), client: null }),
    ]) {
      expect(shown).not.toContain(base64)
      expect(shown).not.toContain((SSE_C.key as Buffer).toString('hex'))
    }
  })
})
