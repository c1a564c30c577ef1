/**
 * Hostile but ordinary use (issue 12, cases 5 to 12, and their siblings), against a real S3:
 * keys with `#` in odd places, a ManifestWriter failing with uploads under way, bodies read twice,
 * archives rewritten under a cached index, downloads with long names and file/folder clashes,
 * Manifests passed to another store, data and entry fields the wire format cannot hold, archive
 * keys with `#`. Each asserts the typed error, and that nothing was written or sent that should not be.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { buildTar, internalManifestFor, rejection } from '@s3exchange/testing'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  BodyConsumedError,
  ConfigurationError,
  type FileEntry,
  InvalidEntryError,
  InvalidSourceError,
  Manifest,
  ObjectNotFoundError,
  PublishError,
  S3ExchangeStore,
  ShardWriteError,
  shardInto,
  UnsafePathError,
} from './index.js'

const s3 = useTestS3()
let store: S3ExchangeStore
const clients: S3Client[] = []
const folders: string[] = []
/** GetObject and HeadObject keys asked for through `store`'s client. */
const asked: string[] = []

beforeAll(() => {
  const client = s3.s3.createClient()
  clients.push(client)
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'GetObjectCommand' || context.commandName === 'HeadObjectCommand') {
        asked.push((args.input as { Key: string }).Key)
      }
      return next(args)
    },
    { step: 'initialize', name: 'record-asked-keys' },
  )
  store = new S3ExchangeStore({ client, bucket: s3.bucket })
})

afterAll(async () => {
  for (const client of clients) client.destroy()
  for (const folder of folders) await rm(folder, { recursive: true, force: true })
})

async function put(key: string, body: Uint8Array | string): Promise<void> {
  await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body }))
}

async function keysUnder(prefix: string): Promise<string[]> {
  return (await Array.fromAsync(store.listKeys(prefix))).sort()
}

async function folder(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 's3x-hostile-'))
  folders.push(dir)
  return dir
}

const sha = (data: Uint8Array) => createHash('sha256').update(data).digest('hex')

// ------------------------------------------------------------------ case 5

describe("case 5: '#name' is an ordinary key", () => {
  it("a loose object named '#present' reads, by getObject, iterObjectsFromKeys and a manifest; never a request with an empty key", async () => {
    // Keys are full bucket keys: this one starts with '#' (the shared bucket of an external server is shared by prefix only, so it is unique).
    const present = `#present-${randomBytes(4).toString('hex')}`
    await put(present, 'here')
    const mark = asked.length
    expect(await (await store.getObject(present)).text()).toBe('here')
    for await (const { entry, body } of store.iterObjectsFromKeys([present])) {
      expect(entry.key).toBe(present)
      expect(await body.text()).toBe('here')
    }
    for await (const { body } of store.iterObjects([{ kind: 'file', key: present }])) expect(await body.text()).toBe('here')
    expect(await store.exists(present)).toBe(true)
    expect(asked.slice(mark)).not.toContain('')
    await store.deleteKey(present)
  })

  it("a missing '#x' is ObjectNotFoundError naming it, everywhere; so is '' (no request is sent for it)", async () => {
    const missing = `#missing-${randomBytes(4).toString('hex')}`
    const mark = asked.length
    for (const key of [missing, '']) {
      const error = await rejection(store.getObject(key))
      expect(error).toBeInstanceOf(ObjectNotFoundError)
      expect((error as ObjectNotFoundError).key).toBe(key)
      expect(await rejection(Array.fromAsync(store.iterObjectsFromKeys([key])))).toBeInstanceOf(ObjectNotFoundError)
      expect(await store.exists(key)).toBe(false)
    }
    expect(asked.slice(mark)).not.toContain('')
  })

  it("'a.tar#' (nothing after the '#') is an ordinary key too", async () => {
    const key = s3.key('k5/a.tar#')
    await put(key, 'trailing hash')
    expect(await (await store.getObject(key)).text()).toBe('trailing hash')
  })

  it("a key with '#' whose archive exists but has no such member reads the ordinary object of that key, when there is one", async () => {
    const archive = s3.key('k5/real.tar')
    await put(
      archive,
      await buildTar([
        { name: '__manifest__.jsonl', data: internalManifestFor(archive, [{ name: 'm', data: 'member' }]) },
        { name: 'm', data: 'member' },
      ]),
    )
    const ordinary = `${archive}#not-a-member`
    await put(ordinary, 'ordinary')
    expect(await (await store.getObject(`${archive}#m`)).text()).toBe('member')
    expect(await (await store.getObject(ordinary)).text()).toBe('ordinary')
    const texts: string[] = []
    for await (const { body } of store.iterObjectsFromKeys([`${archive}#m`, ordinary])) texts.push(await body.text())
    expect(texts).toEqual(['member', 'ordinary'])
    // Neither a member nor an object: ObjectNotFoundError with the whole key.
    const error = await rejection(store.getObject(`${archive}#neither`))
    expect(error).toMatchObject({ name: 'ObjectNotFoundError', key: `${archive}#neither` })
  })

  it("a key with '#' whose part before it is an object that is no archive reads the ordinary object of that key", async () => {
    const notes = s3.key('k5/notes')
    await put(notes, 'plain text, not a tar archive at all, long enough to be sniffed')
    await put(`${notes}#1.txt`, 'note 1')
    expect(await (await store.getObject(`${notes}#1.txt`)).text()).toBe('note 1')
    for await (const { body } of store.iterObjectsFromKeys([`${notes}#1.txt`])) expect(await body.text()).toBe('note 1')
  })
})

// ------------------------------------------------------------------ case 6

describe('case 6: a ManifestWriter that fails with uploads under way', () => {
  it('every object it leaves is listed in PublishError.uploadedKeys, and every call rejects with that same error', async () => {
    const dir = await folder()
    const root = s3.key('k6/manifest.jsonl')
    const writer = store.openManifestWriter(root)
    const keys = Array.from({ length: 5 }, (_, i) => s3.key(`k6/objects/${i}.bin`))
    // Not awaited one by one: the second fails (no such file) while the others upload.
    const calls = keys.map((key, i) =>
      i === 1 ? writer.putObject(key, join(dir, 'missing.bin')) : writer.putObject(key, randomBytes(20_000 + i * 30_000)),
    )
    const outcomes = await Promise.allSettled(calls)
    expect(outcomes[0]?.status).toBe('fulfilled')
    const failure = (outcomes[1] as PromiseRejectedResult).reason
    expect(failure).toBeInstanceOf(PublishError)
    expect((failure as PublishError).cause).toBeInstanceOf(InvalidSourceError)
    for (const outcome of outcomes.slice(2)) {
      expect(outcome.status).toBe('rejected')
      expect((outcome as PromiseRejectedResult).reason).toBe(failure)
    }
    // What is in S3 is exactly what the error lists (the failed key never landed).
    const left = await keysUnder(s3.key('k6/objects/'))
    expect(left).not.toContain(keys[1])
    expect([...(failure as PublishError).uploadedKeys].sort()).toEqual(left)
    expect(left).toEqual([keys[0], keys[2], keys[3], keys[4]].sort())
    // Later calls: the same error, nothing more uploaded, the root never written.
    expect(await rejection(writer.putObject(s3.key('k6/objects/late.bin'), Buffer.from('late')))).toBe(failure)
    expect(await rejection(writer.addFile('x'))).toBe(failure)
    expect(await rejection(writer.close())).toBe(failure)
    expect(await keysUnder(s3.key('k6/objects/'))).toEqual(left)
    expect(await store.exists(root)).toBe(false)
    expect(await writer.abort()).toEqual(expect.arrayContaining(left))
  })

  it('a call made after close() is a ConfigurationError (closed, not failed)', async () => {
    const writer = store.openManifestWriter(s3.key('k6/closed.jsonl'))
    await writer.addFile('a')
    await writer.close()
    expect(await rejection(writer.putObject(s3.key('k6/after-close.bin'), Buffer.from('x')))).toBeInstanceOf(ConfigurationError)
    expect(await store.exists(s3.key('k6/after-close.bin'))).toBe(false)
  })
})

// ------------------------------------------------------------------ case 7

describe('case 7: a body read twice behaves one way, whatever its kind', () => {
  const kinds: { name: string; open: () => Promise<{ key: string; body: import('./index.js').ObjectBody; expected: Uint8Array }> }[] = []
  const small = randomBytes(300)
  const large = randomBytes(300 * 1024)
  const members = [randomBytes(500), randomBytes(700)]
  /** Iterations whose first item is being read; closed after each test. */
  const open: AsyncIterator<unknown>[] = []

  afterEach(async () => {
    for (const iterator of open.splice(0)) await iterator.return?.()
  })

  beforeAll(async () => {
    await put(s3.key('k7/small.bin'), small)
    await put(s3.key('k7/large.bin'), large)
    const shard = await store.putShardArchive(
      s3.key('k7/shard.tar'),
      members.map((data, i) => ({ source: data, member_path: `m${i}.bin` })),
      { compression: null },
    )
    // The first item of an iteration, the iteration kept where it is (a body is read inside its loop).
    const first = async <T>(items: AsyncIterable<T>): Promise<T> => {
      const iterator = items[Symbol.asyncIterator]()
      open.push(iterator)
      const next = await iterator.next()
      if (next.done) throw new Error('empty')
      return next.value
    }
    kinds.push(
      {
        name: 'getObject, loose',
        open: async () => ({ key: s3.key('k7/small.bin'), body: await store.getObject(s3.key('k7/small.bin')), expected: small }),
      },
      {
        name: 'getObject, archive member (ranged)',
        open: async () => ({
          key: `${shard.archiveKey}#m1.bin`,
          body: await store.getObject(`${shard.archiveKey}#m1.bin`),
          expected: members[1] as Uint8Array,
        }),
      },
      {
        name: 'iterObjects, loose, prefetched into memory',
        open: async () => {
          const { entry, body } = await first(store.iterObjects([{ kind: 'file', key: s3.key('k7/small.bin') }]))
          expect(body.buffered).toBe(true)
          return { key: (entry as FileEntry).key, body, expected: small }
        },
      },
      {
        name: 'iterObjects, loose, streamed',
        open: async () => {
          const { entry, body } = await first(
            store.iterObjects([{ kind: 'file', key: s3.key('k7/large.bin') }], { maxBufferedBytes: 1024 }),
          )
          expect(body.buffered).toBe(false)
          return { key: (entry as FileEntry).key, body, expected: large }
        },
      },
      {
        name: 'iterObjects, shard member, streamed',
        open: async () => {
          const { entry, body } = await first(store.iterObjects([shard.entry], { shardConcurrency: 1 }))
          return { key: (entry as FileEntry).key, body, expected: members[0] as Uint8Array }
        },
      },
      {
        name: 'iterObjectsFromKeys, member',
        open: async () => {
          const { entry, body } = await first(store.iterObjectsFromKeys([`${shard.archiveKey}#m0.bin`]))
          return { key: entry.key, body, expected: members[0] as Uint8Array }
        },
      },
    )
  })

  it('each kind: the first read gives the bytes; a second bytes(), text() or for await is BodyConsumedError naming the key', async () => {
    expect(kinds.length).toBe(6)
    for (const kind of kinds) {
      for (const second of ['bytes', 'text', 'iterate', 'concurrent'] as const) {
        const { key, body, expected } = await kind.open()
        const first = body.bytes()
        if (second === 'concurrent') {
          const error = await rejection(body.bytes())
          expect(error, `${kind.name}, ${second}`).toBeInstanceOf(BodyConsumedError)
          expect(Buffer.from(await first).equals(expected)).toBe(true)
          continue
        }
        expect(Buffer.from(await first).equals(expected), kind.name).toBe(true)
        const again =
          second === 'bytes'
            ? body.bytes()
            : second === 'text'
              ? body.text()
              : (async () => {
                  for await (const _ of body);
                })()
        const error = await rejection(again)
        expect(error, `${kind.name}, ${second}`).toBeInstanceOf(BodyConsumedError)
        expect(error).toMatchObject({ key, reason: 'read' })
      }
    }
  })

  it('read as a stream first, then bytes(): BodyConsumedError too; destroyed, then read: BodyConsumedError (destroyed)', async () => {
    for (const kind of kinds) {
      const { body } = await kind.open()
      for await (const _ of body);
      expect(await rejection(body.bytes()), kind.name).toBeInstanceOf(BodyConsumedError)
      const other = await kind.open()
      other.body.destroy()
      expect(await rejection(other.body.bytes())).toMatchObject({ name: 'BodyConsumedError', reason: 'destroyed' })
    }
  })
})

// ------------------------------------------------------------------ case 8

describe('case 8: an archive rewritten under the same key', () => {
  it('iterObjectsFromKeys after the rewrite: the fresh index, entries that match their bytes; verify passes', async () => {
    const archiveKey = s3.key('k8/shard.tar')
    const v1 = [randomBytes(400), randomBytes(500)]
    const v2 = [randomBytes(900), randomBytes(100)]
    const write = (data: Buffer[], tag: string) =>
      store.putShardArchive(
        archiveKey,
        data.map((bytes, i) => ({ source: bytes, member_path: `m${i}.bin`, meta: { tag } })),
        { compression: null },
      )
    await write(v1, 'v1')
    const keys = [`${archiveKey}#m0.bin`, `${archiveKey}#m1.bin`]
    for await (const { body } of store.iterObjectsFromKeys(keys, { verify: true })) await body.bytes()
    expect(store.archiveIndexes?.get(archiveKey)).toBeDefined()

    await write(v2, 'v2')
    const out: { entry: FileEntry; bytes: Uint8Array }[] = []
    for await (const { entry, body } of store.iterObjectsFromKeys(keys, { verify: true })) out.push({ entry, bytes: await body.bytes() })
    expect(out.map(({ bytes }) => Buffer.from(bytes))).toEqual(v2)
    for (const { entry, bytes } of out) {
      expect(entry.size_bytes).toBe(bytes.byteLength)
      expect(entry.sha256).toBe(sha(bytes))
      expect(entry.meta).toEqual({ tag: 'v2' })
    }
  })
})

// ------------------------------------------------------------------ case 9

describe('case 9: downloads', () => {
  it('basenames of 237 to 255 bytes download; one of 256 is UnsafePathError, nothing written', async () => {
    const dir = await folder()
    const keys = [237, 250, 255].map((length) => s3.key(`k9/${'n'.repeat(length - 4)}.bin`))
    for (const key of keys) await put(key, key.slice(-8))
    const written = await store.downloadObjects(keys, join(dir, 'out'))
    expect([...written.keys()]).toEqual(keys)
    for (const key of keys) expect(await readFile(written.get(key) as string, 'utf8')).toBe(key.slice(-8))
    expect(await store.downloadObject(keys[2] as string, join(dir, 'one', `${'n'.repeat(251)}.bin`))).toMatch(/\.bin$/)

    const tooLong = s3.key(`k9/${'n'.repeat(252)}.bin`)
    await put(tooLong, 'x')
    const error = await rejection(store.downloadObjects([tooLong], join(dir, 'long')))
    expect(error).toBeInstanceOf(UnsafePathError)
    expect((error as UnsafePathError).key).toBe(tooLong)
    expect(await readdir(dir)).toEqual(['one', 'out'])
    // One object to a path whose name is too long: typed too.
    expect(await rejection(store.downloadObject(tooLong, join(dir, `${'n'.repeat(256)}.bin`)))).toBeInstanceOf(UnsafePathError)
  })

  it('a shard with members a and a/b: UnsafePathError before anything is written, whatever the order', async () => {
    for (const order of [
      ['a', 'a/b'],
      ['a/b', 'a'],
    ]) {
      const dir = await folder()
      const archiveKey = s3.key(`k9/clash-${order[0]?.replace('/', '_')}.tar`)
      const shard = await store.putShardArchive(
        archiveKey,
        order.map((path) => ({ source: Buffer.from(path), member_path: path })),
        { compression: null },
      )
      const manifest = s3.key(`k9/clash-${order[0]?.replace('/', '_')}.jsonl`)
      await store.writeManifest(manifest, [{ kind: 'file', key: s3.key('k9/first.txt') }, shard.entry])
      await put(s3.key('k9/first.txt'), 'first')
      const error = await rejection(store.downloadManifest(manifest, join(dir, 'out')))
      expect(error, order.join(' then ')).toBeInstanceOf(UnsafePathError)
      expect((error as UnsafePathError).key).toBe(`${archiveKey}#${order[1]}`)
      const byKeys = await rejection(
        store.downloadObjects(
          order.map((path) => `${archiveKey}#${path}`),
          join(dir, 'out'),
        ),
      )
      expect(byKeys).toBeInstanceOf(UnsafePathError)
      // Nothing at all was written: not the loose file before the shard, not a folder.
      expect(await readdir(dir)).toEqual([])
    }
  })

  it('a file already in the way of a folder: UnsafePathError naming the key, not a raw ENOTDIR', async () => {
    const dir = await folder()
    const archiveKey = s3.key('k9/nested.tar')
    await store.putShardArchive(archiveKey, [{ source: Buffer.from('deep'), member_path: 'x/y.txt' }], { compression: null })
    await mkdir(join(dir, 'out'))
    await writeFile(join(dir, 'out', 'x'), 'a file where a folder is needed')
    const error = await rejection(store.downloadObjects([`${archiveKey}#x/y.txt`], join(dir, 'out')))
    expect(error).toBeInstanceOf(UnsafePathError)
    expect((error as UnsafePathError).key).toBe(`${archiveKey}#x/y.txt`)
    expect(await readFile(join(dir, 'out', 'x'), 'utf8')).toBe('a file where a folder is needed')
  })
})

// ------------------------------------------------------------------ case 11

describe('case 11: a Manifest passed to another store', () => {
  it('another client: refused with ConfigurationError, nothing read or deleted', async () => {
    const key = s3.key('k11/manifest.jsonl')
    await put(s3.key('k11/a.txt'), 'a')
    await store.writeManifest(key, [{ kind: 'file', key: s3.key('k11/a.txt') }])
    const otherClient = s3.s3.createClient()
    clients.push(otherClient)
    const other = new S3ExchangeStore({ client: otherClient, bucket: s3.bucket })
    const manifest = Manifest.fromKey(store, key)
    expect(await rejection(other.deleteManifest(manifest))).toBeInstanceOf(ConfigurationError)
    expect(() => other.iterObjects(manifest)).toThrow(ConfigurationError)
    expect(await rejection(other.compactManifest(manifest, s3.key('k11/compact.jsonl')))).toBeInstanceOf(ConfigurationError)
    expect(await store.exists(s3.key('k11/a.txt'))).toBe(true)
    expect(await store.exists(key)).toBe(true)
    expect(await store.exists(s3.key('k11/compact.jsonl'))).toBe(false)
  })

  it('the same client and bucket: used with the store it is passed to (its fence), reads and deletes alike', async () => {
    const key = s3.key('k11/fenced.jsonl')
    await put(s3.key('k11/b.txt'), 'b')
    await store.writeManifest(key, [{ kind: 'file', key: s3.key('k11/b.txt') }])
    const fenced = new S3ExchangeStore({ client: store.client, bucket: s3.bucket, basePrefix: s3.key('k11-elsewhere') })
    const report = await fenced.deleteManifest(Manifest.fromKey(store, key))
    expect(report.outsideFence.sort()).toEqual([s3.key('k11/b.txt'), key].sort())
    expect(report.deletedObjectCount).toBe(0)
    expect(await store.exists(s3.key('k11/b.txt'))).toBe(true)
  })
})

// ------------------------------------------------------------------ case 12

describe('case 12: data and entry fields', () => {
  it('ArrayBuffer, DataView and typed arrays are bytes (the view, not the whole buffer)', async () => {
    const backing = randomBytes(64)
    const cases: [string, ArrayBuffer | ArrayBufferView, Uint8Array][] = [
      ['array-buffer', backing.buffer.slice(backing.byteOffset, backing.byteOffset + 64), backing],
      ['data-view', new DataView(backing.buffer, backing.byteOffset + 8, 16), backing.subarray(8, 24)],
      ['float32', new Float32Array(backing.buffer, backing.byteOffset + 16, 4), backing.subarray(16, 32)],
    ]
    for (const [name, data, expected] of cases) {
      const key = s3.key(`k12/${name}.bin`)
      const entry = await store.putObject(key, data)
      expect(entry.size_bytes).toBe(expected.byteLength)
      expect(entry.sha256).toBe(sha(expected))
      expect(Buffer.from(await (await store.getObject(key)).bytes()).equals(expected)).toBe(true)
    }
  })

  it.each([
    ['null', () => null],
    ['a number', () => 42],
    ['a plain object', () => ({ data: 'x' })],
    ['true', () => true],
    ['an iterable of numbers', () => [1, 2, 3]],
    [
      'a stream of objects',
      () =>
        (async function* () {
          yield { not: 'bytes' }
        })(),
    ],
  ])('%s as data is InvalidSourceError naming the key; nothing written', async (name, data) => {
    const key = s3.key(`k12/bad-${name.replace(/ /g, '-')}.bin`)
    const error = await rejection(store.putObject(key, data() as never))
    expect(error).toBeInstanceOf(InvalidSourceError)
    expect((error as InvalidSourceError).key).toBe(key)
    expect(await store.exists(key)).toBe(false)
    const shardKey = s3.key(`k12/bad-${name.replace(/ /g, '-')}.tar`)
    const inShard = await rejection(store.putShardArchive(shardKey, [{ source: data() as never, member_path: 'x' }]))
    expect(inShard).toBeInstanceOf(ShardWriteError)
    expect(await store.exists(shardKey)).toBe(false)
  })

  it('meta with a BigInt, a cycle, NaN or a Map is InvalidEntryError naming the key and field; nothing written', async () => {
    const cyclic: Record<string, unknown> = { a: 1 }
    cyclic.self = cyclic
    const metas: [Record<string, unknown>, string][] = [
      [{ n: 10n }, 'meta.n'],
      [cyclic, 'meta.self'],
      [{ deep: { x: [1, Number.NaN] } }, 'meta.deep.x[1]'],
      [{ m: new Map([[1, 2]]) }, 'meta.m'],
    ]
    for (const [meta, field] of metas) {
      const key = s3.key(`k12/meta-${field}.bin`)
      const error = await rejection(store.putObject(key, Buffer.from('x'), { meta }))
      expect(error).toBeInstanceOf(InvalidEntryError)
      expect(error).toMatchObject({ key, field })
      expect(await store.exists(key)).toBe(false)
      // In a manifest, in a shard, in a writer.
      const manifest = s3.key(`k12/meta-${field}.jsonl`)
      expect(await rejection(store.writeManifest(manifest, [{ kind: 'file', key: 'a', meta }]))).toMatchObject({
        name: 'InvalidEntryError',
        field,
      })
      expect(await store.exists(manifest)).toBe(false)
      const shardKey = s3.key(`k12/meta-${field}.tar`)
      expect(await rejection(store.putShardArchive(shardKey, [{ source: Buffer.from('x'), member_path: 'x', meta }]))).toMatchObject({
        name: 'InvalidEntryError',
        key: `${shardKey}#x`,
        field,
      })
      expect(await store.exists(shardKey)).toBe(false)
    }
  })

  it('size_bytes that is NaN, negative, a fraction or a string is refused, never written as null', async () => {
    for (const size of [Number.NaN, -1, 1.5, '12', Number.POSITIVE_INFINITY]) {
      const manifest = s3.key(`k12/size-${String(size)}.jsonl`)
      const error = await rejection(store.writeManifest(manifest, [{ kind: 'file', key: 'a', size_bytes: size as number }]))
      expect(error, String(size)).toMatchObject({ name: 'InvalidEntryError', key: 'a', field: 'size_bytes' })
      expect(await store.exists(manifest)).toBe(false)
      // Appended as a part: PublishError caused by it, nothing published, nothing left.
      const appended = await rejection(
        store.writeManifest(manifest, [{ kind: 'file', key: 'a', size_bytes: size as number }], { mode: 'append_parts' }),
      )
      expect(appended).toBeInstanceOf(PublishError)
      expect((appended as PublishError).cause).toBeInstanceOf(InvalidEntryError)
      expect((appended as PublishError).uploadedKeys).toEqual([])
      // A shard member's size, and a writer's file entry.
      const shardKey = s3.key(`k12/size-${String(size)}.tar`)
      expect(
        await rejection(store.putShardArchive(shardKey, [{ source: Buffer.from('x'), member_path: 'x', size_bytes: size as number }])),
      ).toMatchObject({
        name: 'InvalidEntryError',
        field: 'size_bytes',
      })
      const writer = store.openManifestWriter(s3.key(`k12/size-${String(size)}-w.jsonl`))
      const fromWriter = await rejection(writer.addFile('a', { sizeBytes: size as number }))
      expect((fromWriter as PublishError).cause).toBeInstanceOf(InvalidEntryError)
    }
    expect(await keysUnder(s3.key('k12/size-'))).toEqual([])
  })

  it("archive keys with '#' are refused by every writer, before anything is written", async () => {
    const archiveKey = s3.key('k12/a#b.tar')
    const error = await rejection(store.putShardArchive(archiveKey, [{ source: Buffer.from('x'), member_path: 'x' }]))
    expect(error).toBeInstanceOf(ShardWriteError)
    expect((error as ShardWriteError).archiveKey).toBe(archiveKey)
    expect(() => shardInto(store.context(), { prefix: s3.key('k12/p#q') })).toThrow(ConfigurationError)
    const archives = shardInto(store.context(), { prefix: s3.key('k12/ok'), archiveName: (i) => `s#${i}.tar` })([
      { source: Buffer.from('x'), member_path: 'x' },
    ])
    expect(await rejection(archives.next())).toBeInstanceOf(ShardWriteError)
    expect(() => store.openManifestWriter(s3.key('k12/m.jsonl'), { shardSize: { maxEntries: 2 }, shardPrefix: s3.key('k12/s#') })).toThrow(
      ConfigurationError,
    )
    expect(() => store.openManifestWriter(s3.key('k12/x#y/m.jsonl'), { shardSize: { maxEntries: 2 } })).toThrow(ConfigurationError)
    expect(await keysUnder(s3.key('k12/'))).toEqual(expect.not.arrayContaining([expect.stringContaining('#')]))
  })
})
