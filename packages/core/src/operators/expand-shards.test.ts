import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { buildTar, countRequests, internalManifestFor, type TarMemberSpec } from '@s3exchange/testing'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { afterEach, describe, expect, it } from 'vitest'
import type { ArchiveIndex } from '../archive/archive-index.js'
import type { FileEntry, ManifestEntry, ShardEntry } from '../format/entries.js'
import { InvalidManifestError, ObjectNotFoundError, S3ExchangeError, ShardReadError } from '../format/errors.js'
import { LruCache } from '../format/lru-cache.js'
import type { EntryWithBody } from '../s3/body.js'
import { hasBody, ObjectBody, type PipelineItem } from '../s3/body.js'
import type { S3Context } from '../s3/context.js'
import { expandShards } from './expand-shards.js'

const s3 = useTestS3()
const clients: S3Client[] = []

/** A fresh client, with its requests counted. */
function fresh(): { ctx: S3Context; counts: Record<string, number> } {
  const client = s3.s3.createClient()
  clients.push(client)
  return { ctx: { client, bucket: s3.bucket }, counts: countRequests(client) }
}

afterEach(() => {
  for (const client of clients.splice(0)) client.destroy()
})

async function putObject(name: string, body: Uint8Array | string): Promise<string> {
  const key = s3.key(name)
  await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body }))
  return key
}

/** Uploads an archive of `members`; `manifest` builds its internal manifest from the archive key (first member unless `manifestAt`). */
async function putArchive(
  name: string,
  members: TarMemberSpec[],
  options: { gzip?: boolean; manifest?: (archiveKey: string) => string; manifestAt?: number; manifestPath?: string } = {},
): Promise<string> {
  const key = s3.key(name)
  const all = [...members]
  if (options.manifest) {
    all.splice(options.manifestAt ?? 0, 0, { name: options.manifestPath ?? '__manifest__.jsonl', data: options.manifest(key) })
  }
  await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: await buildTar(all, { gzip: options.gzip ?? false }) }))
  return key
}

const shardOf = (archiveKey: string, fields: Partial<ShardEntry> = {}): ShardEntry => ({
  kind: 'shard',
  archive_key: archiveKey,
  ...fields,
})

/** Every member with its bytes read inside the loop. */
async function readAll(ctx: S3Context, items: PipelineItem[]): Promise<{ entry: ManifestEntry; data: string }[]> {
  const out: { entry: ManifestEntry; data: string }[] = []
  for await (const item of expandShards(ctx, { bodies: true })(items)) {
    if (!hasBody(item)) throw new Error(`expected a body, got ${JSON.stringify(item)}`)
    out.push({ entry: item.entry, data: await item.body.text() })
  }
  return out
}

async function shardError(promise: Promise<unknown>, archiveKey: string): Promise<ShardReadError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(ShardReadError)
  expect((error as ShardReadError).archiveKey).toBe(archiveKey)
  expect((error as Error).message).toContain(archiveKey)
  return error as ShardReadError
}

const data: TarMemberSpec[] = [
  { name: 'a.txt', data: 'alpha' },
  { name: 'sub/b.bin', data: 'b'.repeat(3000) },
  { name: 'naïve/名前.txt', data: 'ünï' },
  { name: `${'long/'.repeat(25)}c.txt`, data: 'long name' },
]
const ids = (members: TarMemberSpec[]) => members.map((m, i) => ({ ...m, id: `id-${i}` }))

/** What the internal manifest says of a member, enriched as Python's list_manifest_files does. */
function listed(archiveKey: string, member: TarMemberSpec, id: string | null): FileEntry {
  const size = typeof member.data === 'string' ? Buffer.byteLength(member.data) : (member.data?.byteLength ?? 0)
  return {
    kind: 'file',
    key: `${archiveKey}#${member.name}`,
    member_path: member.name,
    id,
    meta: null,
    size_bytes: size,
    archive_key: archiveKey,
  }
}

describe('expandShards, bodies: false', () => {
  it('yields the internal manifest entries, in manifest order, enriched with archive_key and member_path', async () => {
    // The manifest lists the members in another order than the archive holds them.
    const reversed = ids(data).reverse()
    const archiveKey = await putArchive('xs/entries.tar.gz', data, { gzip: true, manifest: (key) => internalManifestFor(key, reversed) })
    const { ctx, counts } = fresh()
    const out = await Array.fromAsync(expandShards(ctx)([shardOf(archiveKey)]))
    expect(out).toStrictEqual(reversed.map((m) => listed(archiveKey, m, m.id)))
    expect(counts.GetObjectCommand).toBe(1)
  })

  it('gives a virtual key to entries without one, and keeps unknown fields', async () => {
    const archiveKey = await putArchive('xs/nokey.tar', data.slice(0, 1), {
      manifest: () => '{"kind":"file","member_path":"a.txt","id":"x","x_extra":[1]}\n\n',
    })
    const { ctx } = fresh()
    expect(await Array.fromAsync(expandShards(ctx)([shardOf(archiveKey, { compression: null })]))).toStrictEqual([
      { kind: 'file', key: `${archiveKey}#a.txt`, member_path: 'a.txt', id: 'x', x_extra: [1], archive_key: archiveKey },
    ])
  })

  it('passes other items through, in order', async () => {
    const archiveKey = await putArchive('xs/pass.tar.gz', data.slice(0, 2), {
      gzip: true,
      manifest: (key) => internalManifestFor(key, data.slice(0, 2)),
    })
    const { ctx } = fresh()
    const withBody: EntryWithBody = { entry: { kind: 'file', key: 'mem' }, body: ObjectBody.fromBytes({ key: 'mem' }, new Uint8Array(1)) }
    const out = await Array.fromAsync(
      expandShards(ctx)([{ kind: 'file', key: 'before' }, shardOf(archiveKey), withBody, { kind: 'manifest_ref', key: 'r' }]),
    )
    expect(out.map((item) => (hasBody(item) ? `body:${item.entry.kind}` : (item as { key: string }).key))).toStrictEqual([
      'before',
      `${archiveKey}#a.txt`,
      `${archiveKey}#sub/b.bin`,
      'body:file',
      'r',
    ])
    expect(out[3]).toBe(withBody)
  })

  it('finds an internal manifest that is not the first member, with one GET', async () => {
    const archiveKey = await putArchive('xs/late-entries.tar', data, {
      manifest: (key) => internalManifestFor(key, ids(data)),
      manifestAt: 2,
    })
    const { ctx, counts } = fresh()
    expect(await Array.fromAsync(expandShards(ctx)([shardOf(archiveKey)]))).toStrictEqual(ids(data).map((m) => listed(archiveKey, m, m.id)))
    expect(counts.GetObjectCommand).toBe(1)
  })

  it('reads a custom internal_manifest_path', async () => {
    const archiveKey = await putArchive('xs/custom.tar', data.slice(0, 1), {
      manifest: (key) => internalManifestFor(key, data.slice(0, 1)),
      manifestPath: 'meta/index.jsonl',
    })
    const { ctx } = fresh()
    expect(await Array.fromAsync(expandShards(ctx)([shardOf(archiveKey, { internal_manifest_path: 'meta/index.jsonl' })]))).toHaveLength(1)
    await shardError(Array.fromAsync(expandShards(ctx)([shardOf(archiveKey)])), archiveKey)
  })

  it('a missing internal manifest is a ShardReadError naming the archive and the path', async () => {
    const archiveKey = await putArchive('xs/no-manifest.tar.gz', data, { gzip: true })
    const { ctx } = fresh()
    const error = await shardError(Array.fromAsync(expandShards(ctx)([shardOf(archiveKey)])), archiveKey)
    expect(error.message).toContain('__manifest__.jsonl')
  })

  it('a missing archive is a ShardReadError whose cause is ObjectNotFoundError', async () => {
    const archiveKey = s3.key('xs/does-not-exist.tar.gz')
    const { ctx } = fresh()
    const error = await shardError(Array.fromAsync(expandShards(ctx)([shardOf(archiveKey)])), archiveKey)
    expect(error.cause).toBeInstanceOf(ObjectNotFoundError)
    expect((error.cause as ObjectNotFoundError).key).toBe(archiveKey)
  })

  it('bytes that are not an archive are a ShardReadError', async () => {
    const archiveKey = await putObject('xs/not-an-archive.tar.gz', 'this is not a tar archive at all, just some text. '.repeat(40))
    const { ctx } = fresh()
    await shardError(Array.fromAsync(expandShards(ctx)([shardOf(archiveKey)])), archiveKey)
  })

  it('a bad line in the internal manifest is InvalidManifestError naming archive#manifest and the line', async () => {
    const archiveKey = await putArchive('xs/bad-line.tar', data.slice(0, 1), {
      manifest: (key) => `${internalManifestFor(key, data.slice(0, 1))}\n{"kind":"file","member_path":\n`,
    })
    const { ctx } = fresh()
    const error = await Array.fromAsync(expandShards(ctx)([shardOf(archiveKey)])).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(InvalidManifestError)
    expect((error as InvalidManifestError).key).toBe(`${archiveKey}#__manifest__.jsonl`)
    expect((error as InvalidManifestError).lineNumber).toBe(3)
  })

  it('an internal manifest entry that is not a file is a ShardReadError', async () => {
    const archiveKey = await putArchive('xs/ref-inside.tar', data.slice(0, 1), {
      manifest: () => '{"kind":"manifest_ref","key":"x.jsonl"}\n',
    })
    const { ctx } = fresh()
    const error = await shardError(Array.fromAsync(expandShards(ctx)([shardOf(archiveKey)])), archiveKey)
    expect(error.message).toMatch(/only 'file' entries/)
  })
})

describe('expandShards, bodies: false, with an indexCache', () => {
  it('reads each archive head once as an index, keeps it, and yields the same entries as without', async () => {
    const archiveKey = await putArchive('xs/indexed.tar.gz', data, { gzip: true, manifest: (key) => internalManifestFor(key, ids(data)) })
    const late = await putArchive('xs/indexed-late.tar', data, { manifest: (key) => internalManifestFor(key, ids(data)), manifestAt: 2 })
    const items = [shardOf(archiveKey), { kind: 'file', key: 'loose' } as ManifestEntry, shardOf(late)]
    const { ctx, counts } = fresh()
    const without = await Array.fromAsync(expandShards(ctx)(items))
    const indexCache = new LruCache<ArchiveIndex>(8)
    const before = counts.GetObjectCommand ?? 0
    expect(await Array.fromAsync(expandShards(ctx, { indexCache })(items))).toStrictEqual(without)
    // One head read for the indexed archive; the late manifest is no index: the head, then the archive read as without a cache.
    expect(indexCache.get(archiveKey)?.entries).toHaveLength(data.length)
    expect(indexCache.get(late)).toBeUndefined()
    const first = (counts.GetObjectCommand ?? 0) - before
    expect(first).toBe(3)
    expect(await Array.fromAsync(expandShards(ctx, { indexCache })(items))).toStrictEqual(without)
    expect((counts.GetObjectCommand ?? 0) - before - first).toBe(2) // the cached index costs nothing
  })

  it('keepUnlocated: a shard whose index gives no offsets (written by another tool) passes through whole', async () => {
    const archiveKey = await putArchive('xs/unlocated.tar', data, { manifest: (key) => internalManifestFor(key, ids(data)) })
    const shard = shardOf(archiveKey)
    const { ctx } = fresh()
    const indexCache = new LruCache<ArchiveIndex>(8)
    expect(await Array.fromAsync(expandShards(ctx, { indexCache, keepUnlocated: true })([shard]))).toStrictEqual([shard])
    expect(await Array.fromAsync(expandShards(ctx, { indexCache })([shard]))).toHaveLength(data.length)
  })

  it('a bad line in the internal manifest is still InvalidManifestError naming the line', async () => {
    const archiveKey = await putArchive('xs/indexed-bad-line.tar', data.slice(0, 1), {
      manifest: (key) => `${internalManifestFor(key, data.slice(0, 1))}\n{"kind":"file","member_path":\n`,
    })
    const { ctx } = fresh()
    const error = await Array.fromAsync(expandShards(ctx, { indexCache: new LruCache(8) })([shardOf(archiveKey)])).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(InvalidManifestError)
    expect((error as InvalidManifestError).lineNumber).toBe(3)
  })
})

describe('expandShards, bodies: true', () => {
  it('yields the members in archive order with their bytes, out of one GET', async () => {
    const archiveKey = await putArchive('xs/bodies.tar.gz', data, { gzip: true, manifest: (key) => internalManifestFor(key, ids(data)) })
    const { ctx, counts } = fresh()
    const out = await readAll(ctx, [shardOf(archiveKey)])
    expect(out).toStrictEqual(ids(data).map((m) => ({ entry: listed(archiveKey, m, m.id), data: m.data })))
    expect(counts.GetObjectCommand).toBe(1)
  })

  it('bodies know their key, size, archive and member', async () => {
    const archiveKey = await putArchive('xs/info.tar', data.slice(1, 2), { manifest: (key) => internalManifestFor(key, data.slice(1, 2)) })
    const { ctx } = fresh()
    for await (const item of expandShards(ctx, { bodies: true })([shardOf(archiveKey)])) {
      expect(hasBody(item)).toBe(true)
      if (!hasBody(item)) continue
      expect(item.body).toMatchObject({ key: `${archiveKey}#sub/b.bin`, size: 3000, archiveKey, memberPath: 'sub/b.bin' })
      expect((await item.body.bytes()).byteLength).toBe(3000)
    }
  })

  it('reads an internal manifest that is not the first member, with two GETs', async () => {
    const archiveKey = await putArchive('xs/late.tar.gz', data, {
      gzip: true,
      manifest: (key) => internalManifestFor(key, ids(data)),
      manifestAt: 2,
    })
    const { ctx, counts } = fresh()
    const out = await readAll(ctx, [shardOf(archiveKey)])
    expect(out).toStrictEqual(ids(data).map((m) => ({ entry: listed(archiveKey, m, m.id), data: m.data })))
    expect(counts.GetObjectCommand).toBe(2)
  })

  it('a directory before the internal manifest does not cost a second GET', async () => {
    const archiveKey = await putArchive('xs/dir-first.tar', [{ name: 'dir', type: 'directory' }, ...data.slice(0, 1)], {
      manifest: (key) => internalManifestFor(key, data.slice(0, 1)),
      manifestAt: 1,
    })
    const { ctx, counts } = fresh()
    expect((await readAll(ctx, [shardOf(archiveKey)])).map((m) => m.data)).toStrictEqual(['alpha'])
    expect(counts.GetObjectCommand).toBe(1)
  })

  it('members the manifest does not list come out as minimal file entries', async () => {
    const extra: TarMemberSpec = { name: 'unlisted/x.bin', data: 'xyz!' }
    const archiveKey = await putArchive('xs/unlisted.tar.gz', [data[0] as TarMemberSpec, extra], {
      gzip: true,
      manifest: (key) => internalManifestFor(key, [{ ...(data[0] as TarMemberSpec), id: 'a' }]),
    })
    const { ctx } = fresh()
    expect(await readAll(ctx, [shardOf(archiveKey)])).toStrictEqual([
      { entry: listed(archiveKey, data[0] as TarMemberSpec, 'a'), data: 'alpha' },
      {
        entry: { kind: 'file', key: `${archiveKey}#unlisted/x.bin`, archive_key: archiveKey, member_path: 'unlisted/x.bin', size_bytes: 4 },
        data: 'xyz!',
      },
    ])
  })

  it('skips directories, symlinks and hard links (never yields them)', async () => {
    const members: TarMemberSpec[] = [
      { name: 'dir', type: 'directory' },
      { name: 'a.txt', data: 'alpha' },
      { name: 'evil-link', type: 'symlink', linkname: '/etc/passwd' },
      { name: 'hard-link', type: 'link', linkname: 'a.txt' },
      { name: 'dir/b.txt', data: 'beta' },
    ]
    const archiveKey = await putArchive('xs/links.tar', members, {
      manifest: (key) =>
        internalManifestFor(key, [{ name: 'a.txt', data: 'alpha' }, { name: 'evil-link' }, { name: 'dir/b.txt', data: 'beta' }]),
    })
    const { ctx } = fresh()
    const out = await readAll(ctx, [shardOf(archiveKey, { compression: null })])
    expect(out.map((m) => [(m.entry as FileEntry).member_path, m.data])).toStrictEqual([
      ['a.txt', 'alpha'],
      ['dir/b.txt', 'beta'],
    ])
  })

  it('passes loose entries through and expands several shards in turn', async () => {
    const one = await putArchive('xs/one.tar', data.slice(0, 1), { manifest: (key) => internalManifestFor(key, data.slice(0, 1)) })
    const two = await putArchive('xs/two.tar.gz', data.slice(1, 2), {
      gzip: true,
      manifest: (key) => internalManifestFor(key, data.slice(1, 2)),
    })
    const { ctx } = fresh()
    const out: string[] = []
    for await (const item of expandShards(ctx, { bodies: true })([shardOf(one), { kind: 'file', key: 'loose' }, shardOf(two)])) {
      out.push(hasBody(item) ? `${item.entry.key}=${(await item.body.bytes()).byteLength}` : (item as FileEntry).key)
    }
    expect(out).toStrictEqual([`${one}#a.txt=5`, 'loose', `${two}#sub/b.bin=3000`])
  })

  it('a shard entry with compression: null still reads gzip bytes (compression is sniffed)', async () => {
    const archiveKey = await putArchive('xs/mislabelled.tar', data.slice(0, 2), {
      gzip: true,
      manifest: (key) => internalManifestFor(key, data.slice(0, 2)),
    })
    const { ctx } = fresh()
    expect((await readAll(ctx, [shardOf(archiveKey, { compression: null })])).map((m) => m.data)).toStrictEqual(['alpha', 'b'.repeat(3000)])
    expect(await Array.fromAsync(expandShards(ctx)([shardOf(archiveKey, { compression: null })]))).toHaveLength(2)
  })

  it('a shard entry without compression (gzip by default) still reads a plain tar', async () => {
    const archiveKey = await putArchive('xs/plain-default.tar', data.slice(0, 1), {
      manifest: (key) => internalManifestFor(key, data.slice(0, 1)),
    })
    const { ctx } = fresh()
    expect((await readAll(ctx, [shardOf(archiveKey)])).map((m) => m.data)).toStrictEqual(['alpha'])
  })

  it('a body not read before moving on is drained, and reading it later rejects', async () => {
    const members: TarMemberSpec[] = Array.from({ length: 6 }, (_, i) => ({ name: `m${i}.bin`, data: String(i).repeat(20_000 + i) }))
    const archiveKey = await putArchive('xs/drain.tar.gz', members, { gzip: true, manifest: (key) => internalManifestFor(key, members) })
    const { ctx } = fresh()
    const unread: ObjectBody[] = []
    const read: string[] = []
    for await (const item of expandShards(ctx, { bodies: true })([shardOf(archiveKey)])) {
      if (!hasBody(item)) throw new Error('expected a body')
      const index = Number(item.entry.member_path?.slice(1, 2))
      if (index % 2 === 0) unread.push(item.body)
      else read.push(await item.body.text())
    }
    // The members after each skipped one still have their own bytes.
    expect(read).toStrictEqual([1, 3, 5].map((i) => String(i).repeat(20_000 + i)))
    expect(unread).toHaveLength(3)
    for (const body of unread) {
      const error = await body.bytes().catch((e: unknown) => e)
      expect(error).toBeInstanceOf(S3ExchangeError)
      expect((error as Error).message).toContain(body.key)
      expect((error as Error).message).toMatch(/not read before the iteration moved on/)
    }
  })

  it('a bytes() still pending when the iteration moves on settles (bytes or an error, never a hang)', async () => {
    const members: TarMemberSpec[] = Array.from({ length: 4 }, (_, i) => ({ name: `p${i}.bin`, data: String(i).repeat(200_000) }))
    const archiveKey = await putArchive('xs/pending.tar.gz', members, { gzip: true, manifest: (key) => internalManifestFor(key, members) })
    const { ctx } = fresh()
    const pending: Promise<PromiseSettledResult<Uint8Array>>[] = []
    for await (const item of expandShards(ctx, { bodies: true })([shardOf(archiveKey)])) {
      if (hasBody(item))
        pending.push(Promise.allSettled([item.body.bytes()]).then(([result]) => result as PromiseSettledResult<Uint8Array>))
    }
    const settled = await Promise.all(pending)
    expect(settled).toHaveLength(4)
    settled.forEach((result, i) => {
      if (result.status === 'fulfilled') expect(Buffer.from(result.value).toString()).toBe(String(i).repeat(200_000))
      else expect(result.reason).toBeInstanceOf(S3ExchangeError)
    })
  })

  it('breaking out early closes the archive', async () => {
    const archiveKey = await putArchive('xs/break.tar', data, { manifest: (key) => internalManifestFor(key, data) })
    const { ctx } = fresh()
    const seen: string[] = []
    for await (const item of expandShards(ctx, { bodies: true })([shardOf(archiveKey), shardOf(archiveKey)])) {
      if (hasBody(item)) seen.push(item.entry.key)
      if (seen.length === 2) break
    }
    expect(seen).toStrictEqual([`${archiveKey}#a.txt`, `${archiveKey}#sub/b.bin`])
    // The same client still serves the next read.
    expect(await readAll(ctx, [shardOf(archiveKey)])).toHaveLength(4)
  })

  it('a missing internal manifest is a ShardReadError', async () => {
    const archiveKey = await putArchive('xs/no-manifest-bodies.tar', data)
    const { ctx } = fresh()
    const error = await shardError(readAll(ctx, [shardOf(archiveKey)]), archiveKey)
    expect(error.message).toContain('__manifest__.jsonl')
  })

  it('a shard whose archive is missing is a ShardReadError whose cause is ObjectNotFoundError', async () => {
    const archiveKey = s3.key('xs/missing-bodies.tar.gz')
    const { ctx } = fresh()
    const error = await shardError(readAll(ctx, [shardOf(archiveKey)]), archiveKey)
    expect(error.cause).toBeInstanceOf(ObjectNotFoundError)
  })

  it('a truncated tar.gz is a ShardReadError', async () => {
    const members: TarMemberSpec[] = Array.from({ length: 4 }, (_, i) => ({ name: `t${i}.bin`, data: `${i}`.repeat(50_000) }))
    const whole = await buildTar(
      [{ name: '__manifest__.jsonl', data: internalManifestFor(s3.key('xs/truncated.tar.gz'), members) }, ...members],
      {
        gzip: true,
      },
    )
    // Incompressible enough that half the gzip stream ends inside the members.
    const archiveKey = await putObject('xs/truncated.tar.gz', whole.subarray(0, Math.floor(whole.byteLength / 2)))
    const { ctx } = fresh()
    await shardError(readAll(ctx, [shardOf(archiveKey)]), archiveKey)
  })

  it('a truncated plain tar is a ShardReadError, with the member when it was being read', async () => {
    const members: TarMemberSpec[] = Array.from({ length: 3 }, (_, i) => ({ name: `u${i}.bin`, data: `${i}`.repeat(10_000) }))
    const whole = await buildTar([
      { name: '__manifest__.jsonl', data: internalManifestFor(s3.key('xs/truncated.tar'), members) },
      ...members,
    ])
    const archiveKey = await putObject('xs/truncated.tar', whole.subarray(0, whole.byteLength - 1024 - 4000))
    const { ctx } = fresh()
    const error = await shardError(readAll(ctx, [shardOf(archiveKey, { compression: null })]), archiveKey)
    expect(error.memberPath).toBe('u2.bin')
  })

  it('bytes that are not an archive are a ShardReadError', async () => {
    const archiveKey = await putObject('xs/garbage.tar', Buffer.alloc(5000, 0x41))
    const { ctx } = fresh()
    await shardError(readAll(ctx, [shardOf(archiveKey, { compression: null })]), archiveKey)
  })

  it('an empty object is a ShardReadError', async () => {
    const archiveKey = await putObject('xs/empty.tar.gz', new Uint8Array(0))
    const { ctx } = fresh()
    const error = await shardError(readAll(ctx, [shardOf(archiveKey)]), archiveKey)
    expect(error.message).toMatch(/empty/)
  })
})
