/**
 * The read limits (`ReadLimits`): each is enforced with a typed error naming the key and the
 * limit, at its default and when set per call or on the context (the call's value wins); what
 * comes before the limit is reached is still yielded.
 */
import { randomBytes } from 'node:crypto'
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { buildTar, internalManifestFor } from '@s3exchange/testing'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { describe, expect, it } from 'vitest'
import { readInternalManifest, readShardMembers, scanArchive } from '../archive/scan-archive.js'
import type { FileEntry, ManifestEntry, ShardEntry } from '../format/entries.js'
import { InvalidManifestError, LimitExceededError, S3ExchangeError } from '../format/errors.js'
import { DEFAULT_LIMITS, effectiveLimits } from '../format/limits.js'
import type { S3Context } from '../s3/context.js'
import { expandRefs } from './expand-refs.js'
import { expandShards } from './expand-shards.js'
import { readManifest } from './read-manifest.js'

const s3 = useTestS3()
const ctx = (limits?: S3Context['limits']): S3Context => ({ client: s3.client, bucket: s3.bucket, limits })

async function put(key: string, body: string | Uint8Array): Promise<void> {
  await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body }))
}

/** Runs the iteration; resolves to what came out and the error that ended it, if any. */
async function drain<T>(items: AsyncIterable<T>, read?: (item: T) => Promise<unknown>): Promise<{ items: T[]; error: unknown }> {
  const out: T[] = []
  try {
    for await (const item of items) {
      await read?.(item)
      out.push(item)
    }
  } catch (error) {
    return { items: out, error }
  }
  return { items: out, error: undefined }
}

const line = (entry: ManifestEntry) => `${JSON.stringify(entry)}\n`

/** Writes a chain of `length` manifests, each holding one file and a ref to the next; returns the first key. */
async function chain(name: string, length: number): Promise<string> {
  const keys = Array.from({ length }, (_, i) => s3.key(`${name}/m${i}.jsonl`))
  for (const [i, key] of keys.entries()) {
    const next = keys[i + 1]
    await put(key, line({ kind: 'file', key: `${name}/f${i}` }) + (next ? line({ kind: 'manifest_ref', key: next }) : ''))
  }
  return keys[0] as string
}

const files = (run: { items: unknown[] }) => (run.items as FileEntry[]).map((entry) => entry.key)

describe('effectiveLimits', () => {
  it('the call wins over the context, the context over the defaults', () => {
    expect(effectiveLimits(undefined)).toEqual(DEFAULT_LIMITS)
    expect(DEFAULT_LIMITS).toEqual({
      maxLineBytes: 16 * 1024 * 1024,
      maxRefDepth: 64,
      maxManifests: 100_000,
      maxInternalManifestBytes: 512 * 1024 * 1024,
      maxMemberBytes: 2 ** 40,
    })
    expect(effectiveLimits({ maxRefDepth: 3, maxManifests: 9 }, { maxRefDepth: 5 })).toEqual({
      ...DEFAULT_LIMITS,
      maxRefDepth: 5,
      maxManifests: 9,
    })
  })
})

describe('maxRefDepth', () => {
  it('a chain of 66 manifests is one level too deep for the default 64: LimitExceededError after the 65 files before it', async () => {
    const root = await chain('deep', 66)
    const run = await drain(expandRefs(ctx())(readManifest(ctx(), root)))
    expect(files(run)).toEqual(Array.from({ length: 65 }, (_, i) => `deep/f${i}`))
    expect(run.error).toBeInstanceOf(LimitExceededError)
    expect(run.error).toBeInstanceOf(S3ExchangeError)
    expect(run.error).toMatchObject({ key: s3.key('deep/m64.jsonl'), limit: 'maxRefDepth', value: 64 })
    expect((run.error as Error).message).toContain(s3.key('deep/m65.jsonl'))
    // One more level allowed: every file.
    const deeper = await drain(expandRefs(ctx(), { maxRefDepth: 65 })(readManifest(ctx(), root)))
    expect(deeper.error).toBeUndefined()
    expect(files(deeper)).toHaveLength(66)
  })

  it("set on the context, or per call (the call's value wins)", async () => {
    const root = await chain('ctxdeep', 5)
    const limited = await drain(expandRefs(ctx({ maxRefDepth: 2 }))(readManifest(ctx(), root)))
    expect(files(limited)).toEqual(['ctxdeep/f0', 'ctxdeep/f1', 'ctxdeep/f2'])
    expect(limited.error).toMatchObject({ name: 'LimitExceededError', limit: 'maxRefDepth', value: 2 })
    const overridden = await drain(expandRefs(ctx({ maxRefDepth: 2 }), { maxRefDepth: 4 })(readManifest(ctx(), root)))
    expect(overridden.error).toBeUndefined()
    expect(files(overridden)).toHaveLength(5)
  })
})

describe('maxManifests', () => {
  it('a root referring to 10 manifests needs 11: refused at the 11th with 10, read whole with 11', async () => {
    const root = s3.key('wide/root.jsonl')
    let text = ''
    for (let i = 0; i < 10; i++) {
      const key = s3.key(`wide/m${i}.jsonl`)
      await put(key, line({ kind: 'file', key: `wide/f${i}` }))
      text += line({ kind: 'manifest_ref', key })
    }
    await put(root, text)
    const refused = await drain(expandRefs(ctx(), { maxManifests: 10 })(readManifest(ctx(), root)))
    expect(files(refused)).toEqual(Array.from({ length: 9 }, (_, i) => `wide/f${i}`))
    expect(refused.error).toMatchObject({ name: 'LimitExceededError', key: root, limit: 'maxManifests', value: 10 })
    const read = await drain(expandRefs(ctx({ maxManifests: 11 }))(readManifest(ctx(), root)))
    expect(read.error).toBeUndefined()
    expect(files(read)).toHaveLength(10)
  })
})

describe('maxLineBytes', () => {
  it('set on the context: a longer line is InvalidManifestError naming the key and the line', async () => {
    const key = s3.key('lines/manifest.jsonl')
    await put(key, line({ kind: 'file', key: 'short' }) + line({ kind: 'file', key: 'x'.repeat(2000) }))
    const run = await drain(readManifest(ctx({ maxLineBytes: 1000 }), key))
    expect(run.error).toBeInstanceOf(InvalidManifestError)
    expect(run.error).toMatchObject({ key, lineNumber: 2 })
    expect((await drain(readManifest(ctx({ maxLineBytes: 1000 }), key, { maxLineBytes: 3000 }))).items).toHaveLength(2)
  })

  it('applies to internal manifests too', async () => {
    const key = s3.key('lines/shard.tar')
    const manifest = line({ kind: 'file', key: `${key}#a`, member_path: 'a', meta: { pad: 'p'.repeat(3000) } })
    await put(
      key,
      await buildTar([
        { name: '__manifest__.jsonl', data: manifest },
        { name: 'a', data: 'A' },
      ]),
    )
    const shard: ShardEntry = { kind: 'shard', archive_key: key, format: 'tar' }
    const error = await readInternalManifest(ctx({ maxLineBytes: 1000 }), shard).catch((caught: unknown) => caught)
    expect(error).toMatchObject({ name: 'InvalidManifestError', key: `${key}#__manifest__.jsonl`, lineNumber: 1 })
    expect(await readInternalManifest(ctx(), shard)).toHaveLength(1)
  })
})

describe('maxMemberBytes and maxInternalManifestBytes', () => {
  const big = randomBytes(5000)
  const archive = (name: string) => s3.key(`members/${name}`)

  it('a member declaring more than maxMemberBytes: LimitExceededError naming the archive, after the members before it, none of it read', async () => {
    for (const gzip of [false, true]) {
      const key = archive(gzip ? 'big.tar.gz' : 'big.tar')
      const members = [
        { name: 'small.txt', data: 'small' },
        { name: 'big.bin', data: big },
        { name: 'after.txt', data: 'after' },
      ]
      await put(key, await buildTar([{ name: '__manifest__.jsonl', data: internalManifestFor(key, members) }, ...members], { gzip }))
      const shard: ShardEntry = { kind: 'shard', archive_key: key, format: 'tar', compression: gzip ? 'gzip' : null }
      for (const run of [
        await drain(readShardMembers(ctx({ maxMemberBytes: 4999 }), shard), (item) => item.body.bytes()),
        await drain(readShardMembers(ctx(), shard, { maxMemberBytes: 4999 }), (item) => item.body.bytes()),
        await drain(expandShards(ctx({ maxMemberBytes: 4999 }), { bodies: true, shardConcurrency: 2 })([shard]), (item) =>
          'body' in item ? (item.body as { bytes(): Promise<Uint8Array> }).bytes() : Promise.resolve(),
        ),
      ]) {
        expect(run.items.map((item) => (item as { entry: FileEntry }).entry.member_path)).toEqual(['small.txt'])
        expect(run.error).toBeInstanceOf(LimitExceededError)
        expect(run.error).toMatchObject({ key, limit: 'maxMemberBytes', value: 4999 })
        expect((run.error as Error).message).toContain('big.bin')
      }
      // At the limit exactly: read.
      const read = await drain(readShardMembers(ctx({ maxMemberBytes: 5000 }), shard), (item) => item.body.bytes())
      expect(read.error).toBeUndefined()
      expect(read.items).toHaveLength(3)
    }
  })

  it('an internal manifest larger than maxInternalManifestBytes: LimitExceededError, whether read alone or while scanning', async () => {
    const key = archive('manifest.tar')
    const manifest = ['a', 'b', 'c'].map((name) => line({ kind: 'file', key: `${key}#${name}`, member_path: name })).join('')
    const size = Buffer.byteLength(manifest)
    await put(
      key,
      await buildTar([
        { name: '__manifest__.jsonl', data: manifest },
        { name: 'a', data: 'A' },
        { name: 'b', data: 'B' },
        { name: 'c', data: 'C' },
      ]),
    )
    const shard: ShardEntry = { kind: 'shard', archive_key: key, format: 'tar' }
    const alone = await readInternalManifest(ctx({ maxInternalManifestBytes: size - 1 }), shard).catch((caught: unknown) => caught)
    expect(alone).toMatchObject({ name: 'LimitExceededError', key, limit: 'maxInternalManifestBytes', value: size - 1 })
    const scanning = await drain(scanArchive(ctx(), key, { maxInternalManifestBytes: size - 1 }))
    expect(scanning.items).toEqual([])
    expect(scanning.error).toMatchObject({ name: 'LimitExceededError', limit: 'maxInternalManifestBytes' })
    expect(await readInternalManifest(ctx({ maxInternalManifestBytes: size }), shard)).toHaveLength(3)
  })
})
