/**
 * Options are checked where they enter (issue 12, case 4): every numeric option of every public
 * call, given NaN, a negative number, a fraction, a string, Infinity or a value out of range, is a
 * `ConfigurationError` naming the option and the call, the same way everywhere: a call that returns
 * an iterable, a stage or a writer throws it when called; a call that returns a promise returns one
 * already rejected. Nothing is sent: the client's requests are counted. `concurrency: NaN` no
 * longer spins (the call never starts), and `limit: NaN` is the same error in every method.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { countRequests, type RequestCounts, rejection } from '@s3exchange/testing'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  ConfigurationError,
  deleteAll,
  expandRefs,
  expandShards,
  fetchBodies,
  fetchKeys,
  LruCache,
  partition,
  putObject,
  putObjects,
  readManifest,
  S3ExchangeStore,
  Shard,
  ShardWriter,
  shardInto,
  splitShardItems,
  take,
  writeManifestObject,
  writeManifestParts,
} from './index.js'

const s3 = useTestS3()
let store: S3ExchangeStore
let counts: RequestCounts
const manifestKey = () => s3.key('opts/manifest.jsonl')

beforeAll(async () => {
  const client = s3.s3.createClient()
  counts = countRequests(client)
  store = new S3ExchangeStore({ client, bucket: s3.bucket })
  await s3.client.send(
    new PutObjectCommand({ Bucket: s3.bucket, Key: manifestKey(), Body: `{"kind":"file","key":"${s3.key('opts/a.txt')}"}\n` }),
  )
})

/** How a call reports a bad option: synchronously (iterables, stages, writers) or as a rejected promise. */
type Delivery = 'throws' | 'rejects'

/** A call under test: how it is made with `options`, and how it must report a bad one. */
interface Call {
  name: string
  delivery: Delivery
  make: (options: Record<string, unknown>) => unknown
}

const ctx = () => store.context()
const calls = (): Record<string, Call> => ({
  // The store: iterables throw, promises reject.
  iterObjects: { name: 'iterObjects', delivery: 'throws', make: (o) => store.iterObjects(manifestKey(), o) },
  getObjects: { name: 'getObjects', delivery: 'throws', make: (o) => store.getObjects(manifestKey(), o) },
  iterManifestEntries: { name: 'iterManifestEntries', delivery: 'throws', make: (o) => store.iterManifestEntries(manifestKey(), o) },
  getKeys: { name: 'getKeys', delivery: 'throws', make: (o) => store.getKeys(manifestKey(), o) },
  iterObjectsFromKeys: { name: 'iterObjectsFromKeys', delivery: 'throws', make: (o) => store.iterObjectsFromKeys(['k'], o) },
  listManifestFiles: { name: 'listManifestFiles', delivery: 'throws', make: (o) => store.listManifestFiles(manifestKey(), o) },
  downloadObjects: { name: 'downloadObjects', delivery: 'rejects', make: (o) => store.downloadObjects(['k'], '/nonexistent/x', o) },
  downloadManifest: {
    name: 'downloadManifest',
    delivery: 'rejects',
    make: (o) => store.downloadManifest(manifestKey(), '/nonexistent/x', o),
  },
  deletePrefix: { name: 'deletePrefix', delivery: 'rejects', make: (o) => store.deletePrefix(s3.key('opts/'), o) },
  deleteManifest: { name: 'deleteManifest', delivery: 'rejects', make: (o) => store.deleteManifest(manifestKey(), o) },
  writeManifest: { name: 'writeManifest', delivery: 'rejects', make: (o) => store.writeManifest(s3.key('opts/w.jsonl'), [], o) },
  putSharded: { name: 'putSharded', delivery: 'rejects', make: (o) => store.putSharded(s3.key('opts/s.jsonl'), [], o) },
  putObject: { name: 'putObject', delivery: 'rejects', make: (o) => store.putObject(s3.key('opts/p.bin'), Buffer.from('p'), o) },
  openManifestWriter: { name: 'openManifestWriter', delivery: 'throws', make: (o) => store.openManifestWriter(s3.key('opts/mw.jsonl'), o) },
  shardIterEntries: {
    name: 'Shard.iterEntries',
    delivery: 'throws',
    make: (o) => Shard.fromKey(store, s3.key('opts/s.tar')).iterEntries(o),
  },
  shardIterObjects: {
    name: 'Shard.iterObjects',
    delivery: 'throws',
    make: (o) => Shard.fromKey(store, s3.key('opts/s.tar')).iterObjects(o),
  },
  newStore: { name: 'S3ExchangeStore', delivery: 'throws', make: (o) => new S3ExchangeStore({ client: s3.client, bucket: 'b', ...o }) },
  // Core: stages, sources and writers throw; promises reject.
  fetchBodies: { name: 'fetchBodies', delivery: 'throws', make: (o) => fetchBodies(ctx(), o) },
  fetchKeys: { name: 'fetchKeys', delivery: 'throws', make: (o) => fetchKeys(ctx(), o) },
  expandShards: { name: 'expandShards', delivery: 'throws', make: (o) => expandShards(ctx(), { bodies: true, ...o }) },
  expandRefs: { name: 'expandRefs', delivery: 'throws', make: (o) => expandRefs(ctx(), o) },
  readManifest: { name: 'readManifest', delivery: 'throws', make: (o) => readManifest(ctx(), manifestKey(), o) },
  putObjects: { name: 'putObjects', delivery: 'throws', make: (o) => putObjects(ctx(), o) },
  corePutObject: { name: 'putObject', delivery: 'rejects', make: (o) => putObject(ctx(), s3.key('opts/c.bin'), Buffer.from('c'), o) },
  shardInto: { name: 'shardInto', delivery: 'throws', make: (o) => shardInto(ctx(), { prefix: s3.key('opts/shards'), ...o }) },
  ShardWriter: { name: 'ShardWriter', delivery: 'throws', make: (o) => new ShardWriter(ctx(), s3.key('opts/w.tar'), o) },
  writeManifestParts: { name: 'writeManifestParts', delivery: 'throws', make: (o) => writeManifestParts(ctx(), s3.key('opts/p.jsonl'), o) },
  writeManifestObject: {
    name: 'writeManifestObject',
    delivery: 'rejects',
    make: (o) => writeManifestObject(ctx(), s3.key('opts/o.jsonl'), [], o),
  },
  deleteAll: { name: 'deleteAll', delivery: 'throws', make: (o) => deleteAll(ctx(), o) },
  splitShardItems: { name: 'splitShardItems', delivery: 'throws', make: (o) => splitShardItems([], o) },
  partition: { name: 'partition', delivery: 'throws', make: (o) => partition(o.partition as never) },
})

/** Every numeric option of every public call, as [call, option path, options]. */
const cases: [string, string, (bad: unknown) => Record<string, unknown>][] = [
  ...['iterObjects', 'getObjects'].flatMap((call): [string, string, (bad: unknown) => Record<string, unknown>][] => [
    [call, 'concurrency', (bad) => ({ concurrency: bad })],
    [call, 'shardConcurrency', (bad) => ({ shardConcurrency: bad })],
    [call, 'maxBufferedBytes', (bad) => ({ maxBufferedBytes: bad })],
    [call, 'limit', (bad) => ({ limit: bad })],
    [call, 'partition.count', (bad) => ({ partition: { index: 0, count: bad } })],
  ]),
  ['iterManifestEntries', 'limit', (bad) => ({ limit: bad })],
  ['getKeys', 'limit', (bad) => ({ limit: bad })],
  ['iterObjectsFromKeys', 'concurrency', (bad) => ({ concurrency: bad })],
  ['iterObjectsFromKeys', 'limit', (bad) => ({ limit: bad })],
  ['downloadObjects', 'concurrency', (bad) => ({ concurrency: bad })],
  ['downloadManifest', 'concurrency', (bad) => ({ concurrency: bad })],
  ['deletePrefix', 'concurrency', (bad) => ({ concurrency: bad })],
  ['deleteManifest', 'concurrency', (bad) => ({ concurrency: bad })],
  ['writeManifest', 'partMaxEntries', (bad) => ({ mode: 'append_parts', partMaxEntries: bad })],
  ['writeManifest', 'partMaxBytes', (bad) => ({ mode: 'append_parts', partMaxBytes: bad })],
  ['writeManifest', 'maxAttempts', (bad) => ({ mode: 'append_parts', maxAttempts: bad })],
  ['putSharded', 'partMaxEntries', (bad) => ({ partMaxEntries: bad })],
  ['openManifestWriter', 'partMaxEntries', (bad) => ({ partMaxEntries: bad })],
  ['openManifestWriter', 'partMaxBytes', (bad) => ({ partMaxBytes: bad })],
  ['openManifestWriter', 'maxCommitAttempts', (bad) => ({ maxCommitAttempts: bad })],
  ['openManifestWriter', 'shardSize.maxEntries', (bad) => ({ shardSize: { maxEntries: bad } })],
  ['openManifestWriter', 'shardSize.maxBytes', (bad) => ({ shardSize: { maxBytes: bad } })],
  ['shardIterEntries', 'limit', (bad) => ({ limit: bad })],
  ['shardIterObjects', 'limit', (bad) => ({ limit: bad })],
  ['newStore', 'archiveIndexCacheSize', (bad) => ({ archiveIndexCacheSize: bad })],
  ['newStore', 'limits.maxRefDepth', (bad) => ({ limits: { maxRefDepth: bad } })],
  ['newStore', 'limits.maxManifests', (bad) => ({ limits: { maxManifests: bad } })],
  ['newStore', 'limits.maxLineBytes', (bad) => ({ limits: { maxLineBytes: bad } })],
  ['newStore', 'limits.maxInternalManifestBytes', (bad) => ({ limits: { maxInternalManifestBytes: bad } })],
  ['newStore', 'limits.maxMemberBytes', (bad) => ({ limits: { maxMemberBytes: bad } })],
  ['fetchBodies', 'concurrency', (bad) => ({ concurrency: bad })],
  ['fetchBodies', 'maxBufferedBytes', (bad) => ({ maxBufferedBytes: bad })],
  ['fetchKeys', 'concurrency', (bad) => ({ concurrency: bad })],
  ['expandShards', 'shardConcurrency', (bad) => ({ shardConcurrency: bad })],
  ['expandShards', 'maxBufferedBytes', (bad) => ({ maxBufferedBytes: bad })],
  ['expandShards', 'maxMemberBytes', (bad) => ({ maxMemberBytes: bad })],
  ['expandRefs', 'maxRefDepth', (bad) => ({ maxRefDepth: bad })],
  ['expandRefs', 'maxManifests', (bad) => ({ maxManifests: bad })],
  ['readManifest', 'maxLineBytes', (bad) => ({ maxLineBytes: bad })],
  ['putObjects', 'concurrency', (bad) => ({ concurrency: bad })],
  ['putObjects', 'partSize', (bad) => ({ partSize: bad })],
  ['putObjects', 'queueSize', (bad) => ({ queueSize: bad })],
  ['corePutObject', 'partSize', (bad) => ({ partSize: bad })],
  ['corePutObject', 'queueSize', (bad) => ({ queueSize: bad })],
  ['shardInto', 'maxEntries', (bad) => ({ maxEntries: bad })],
  ['shardInto', 'maxBytes', (bad) => ({ maxBytes: bad })],
  ['shardInto', 'gzipLevel', (bad) => ({ gzipLevel: bad })],
  ['shardInto', 'maxUnsizedItemBytes', (bad) => ({ maxUnsizedItemBytes: bad })],
  ['ShardWriter', 'partSize', (bad) => ({ partSize: bad })],
  ['ShardWriter', 'queueSize', (bad) => ({ queueSize: bad })],
  ['ShardWriter', 'gzipLevel', (bad) => ({ gzipLevel: bad })],
  ['writeManifestParts', 'partMaxEntries', (bad) => ({ partMaxEntries: bad })],
  ['writeManifestParts', 'maxAttempts', (bad) => ({ maxAttempts: bad })],
  ['writeManifestObject', 'partSize', (bad) => ({ partSize: bad })],
  ['deleteAll', 'concurrency', (bad) => ({ concurrency: bad })],
  ['splitShardItems', 'maxEntries', (bad) => ({ maxEntries: bad })],
  ['splitShardItems', 'maxBytes', (bad) => ({ maxBytes: bad })],
  ['partition', 'partition.index', (bad) => ({ partition: { index: bad, count: 4 } })],
]

/** Values no numeric option accepts. */
const BAD: unknown[] = [Number.NaN, -1, 1.5, '8', Number.POSITIVE_INFINITY, null]

/** Runs `call` with `options` and returns the error it reported, checking it was reported as its delivery says. */
async function reported(call: Call, options: Record<string, unknown>): Promise<unknown> {
  let result: unknown
  try {
    result = call.make(options)
  } catch (error) {
    expect(call.delivery, `${call.name} threw synchronously`).toBe('throws')
    return error
  }
  expect(call.delivery, `${call.name} returned instead of throwing`).toBe('rejects')
  expect(result).toBeInstanceOf(Promise)
  return (result as Promise<unknown>).then(
    () => 'resolved',
    (error: unknown) => error,
  )
}

describe('every numeric option of every public call', () => {
  it.each(cases)('%s: %s out of its rule is a ConfigurationError naming it and the call, nothing sent', async (id, option, build) => {
    const call = calls()[id] as Call
    const before = Object.values(counts).reduce((sum, n) => sum + n, 0)
    for (const bad of BAD) {
      const error = await reported(call, build(bad))
      expect(error, `${id} ${option} = ${String(bad)}`).toBeInstanceOf(ConfigurationError)
      expect(error).toMatchObject({ option, call: call.name })
      expect((error as Error).message).toContain(option)
    }
    expect(Object.values(counts).reduce((sum, n) => sum + n, 0)).toBe(before)
  })

  it('concurrency 0 and values past the top of their range are refused too', async () => {
    for (const concurrency of [0, 1025]) {
      expect(() => store.iterObjects(manifestKey(), { concurrency })).toThrow(ConfigurationError)
      expect(() => fetchBodies(ctx(), { concurrency })).toThrow(ConfigurationError)
    }
    expect(() => store.iterObjects(manifestKey(), { concurrency: 1024 })).not.toThrow()
    expect(() => new ShardWriter(ctx(), s3.key('opts/w.tar'), { partSize: 5 * 1024 * 1024 - 1 })).toThrow(ConfigurationError)
    expect(() => new ShardWriter(ctx(), s3.key('opts/w.tar'), { gzipLevel: 10 })).toThrow(ConfigurationError)
    expect(() => take(-1)).toThrow(ConfigurationError)
    expect(() => new LruCache(Number.NaN)).toThrow(ConfigurationError)
    // Delays are numbers of milliseconds (fractions allowed), finite and not negative.
    for (const baseDelayMs of [Number.NaN, -1, Number.POSITIVE_INFINITY, '5']) {
      expect(() => writeManifestParts(ctx(), s3.key('opts/p.jsonl'), { baseDelayMs: baseDelayMs as number })).toThrow(ConfigurationError)
    }
    expect(() => writeManifestParts(ctx(), s3.key('opts/p.jsonl'), { baseDelayMs: 0.5 })).not.toThrow()
  })

  it('concurrency: NaN, as Number(process.env.UNSET) gives it: an error at once, in every call that takes it (no spin, no raw TypeError)', async () => {
    const concurrency = Number(process.env.S3X_SURELY_UNSET_VARIABLE)
    expect(concurrency).toBeNaN()
    expect(() => store.iterObjects(manifestKey(), { concurrency })).toThrow(ConfigurationError)
    expect(() => store.iterObjectsFromKeys(['k'], { concurrency })).toThrow(ConfigurationError)
    await expect(store.downloadObjects(['k'], '/nonexistent/x', { concurrency })).rejects.toThrow(ConfigurationError)
    await expect(store.deletePrefix(s3.key('opts/'), { concurrency })).rejects.toThrow(ConfigurationError)
    await expect(store.deleteManifest(manifestKey(), { concurrency })).rejects.toThrow(ConfigurationError)
  })

  it('limit: NaN is the same error in every method', () => {
    for (const make of [
      () => store.iterObjects(manifestKey(), { limit: Number.NaN }),
      () => store.iterManifestEntries(manifestKey(), { limit: Number.NaN }),
      () => store.getKeys(manifestKey(), { limit: Number.NaN }),
      () => store.iterObjectsFromKeys(['k'], { limit: Number.NaN }),
      () => Shard.fromKey(store, 'a.tar').iterEntries({ limit: Number.NaN }),
      () => take(Number.NaN),
    ]) {
      expect(make).toThrow(ConfigurationError)
      expect(make).toThrow(/limit must be an integer ≥ 0, got NaN/)
    }
  })

  it('a context with bad limits is refused by the stages that take it', () => {
    const bad = { ...ctx(), limits: { maxRefDepth: -1 } }
    expect(() => expandRefs(bad)).toThrow(ConfigurationError)
    expect(() => readManifest(bad, manifestKey())).toThrow(ConfigurationError)
    expect(() => expandShards(bad, { bodies: true })).toThrow(ConfigurationError)
  })

  it('options that are not an object, and choices out of their set, are refused the same way', async () => {
    expect(() => store.iterObjects(manifestKey(), 5 as never)).toThrow(ConfigurationError)
    expect(() => fetchBodies(ctx(), { onMissing: 'ignore' as never })).toThrow(ConfigurationError)
    expect(() => fetchBodies(ctx(), { verify: 'yes' as never })).toThrow(ConfigurationError)
    await expect(store.deletePrefix(s3.key('opts/'), { regex: '[' })).rejects.toMatchObject({ option: 'regex', call: 'deletePrefix' })
    expect(() => splitShardItems([], { rollover: 'sometimes' as never })).toThrow(ConfigurationError)
  })

  it('a key, prefix or path that is not a string is a ConfigurationError naming the argument; a manifest that is neither a key, a Manifest nor entries too', async () => {
    for (const bad of [undefined, null, 42, { key: 'a' }]) {
      expect(await rejection(store.getObject(bad as never))).toMatchObject({ name: 'ConfigurationError', option: 'key', call: 'getObject' })
      expect(await rejection(store.putObject(bad as never, Buffer.from('x')))).toMatchObject({ name: 'ConfigurationError', option: 'key' })
      expect(await rejection(store.deletePrefix(bad as never))).toMatchObject({ name: 'ConfigurationError', option: 'prefix' })
      expect(await rejection(store.downloadObject('k', bad as never))).toMatchObject({ name: 'ConfigurationError', option: 'localPath' })
      expect(() => store.listKeys(bad as never)).toThrow(ConfigurationError)
      expect(() => store.openManifestWriter(bad as never)).toThrow(ConfigurationError)
    }
    for (const bad of [null, 42, true]) {
      expect(() => store.iterObjects(bad as never)).toThrow(ConfigurationError)
      expect(await rejection(store.deleteManifest(bad as never))).toBeInstanceOf(ConfigurationError)
    }
  })
})
