/**
 * Soak under faults (issue 7): the local S3 in a child process, the fault proxy of
 * `@s3exchange/testing` in front of it (503 SlowDown and 500 InternalError answers, GET bodies cut
 * at a random point, responses dropped after the server carried the request out, delays,
 * conditional writes enforced), and for the given time a mix of
 * concurrent writes (putObject, putShardArchive + putSharded, append_parts to one root from
 * several writers, the ManifestWriter) and reads (iterObjects with verify, iterObjectsFromKeys,
 * getObject of objects and members, ranged reads) that checks every byte against what was written.
 * Every few minutes (an epoch) and at the end, every root manifest written is read back whole
 * through a client without faults: each entry exists, verifies, and appears exactly once, and no
 * multipart upload is left open. Exits non-zero on any byte that did not verify, any entry missing
 * or extra, any open upload, or any error that is not an S3ExchangeError.
 *
 *   node bench/soak.ts [--minutes 60] [--fault-rate 0.05] [--seed 1] [--epoch-minutes 5] [--record]
 *   node bench/soak.ts --objects 100000 [--fault-rate 0.05] [--seed 1] [--record]
 *
 * Run with `node --expose-gc` to also record the heap after a full GC at each epoch end (flat if
 * nothing leaks).
 *
 * `--objects N` writes N objects instead (30% loose, 70% in shards of 1,000, half tar.gz written
 * by the ManifestWriter, half plain tar by putShardArchive) through the faults, publishes them in
 * one manifest, then reads every entry back and verifies it. `--record` replaces the "## Soak" (or
 * "## Writing 100,000 objects through faults") section of bench/RESULTS.md.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createCipheriv, createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { CreateBucketCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3'
import {
  type MultipartUpload,
  mulberry32,
  pendingMultipartUploads,
  randomFaults,
  retryQuickly,
  startS3Proxy,
  trackMultipartUploads,
} from '@s3exchange/testing'
import {
  type CommitResult,
  type EntryWithBody,
  type FileEntry,
  getObjectBody,
  IntegrityError,
  S3ExchangeError,
  S3ExchangeStore,
  type ShardEntry,
  type ShardItem,
} from 's3exchange'

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '60' },
    'fault-rate': { type: 'string', default: '0.05' },
    seed: { type: 'string', default: '1' },
    objects: { type: 'string' },
    'epoch-minutes': { type: 'string', default: '5' },
    record: { type: 'boolean', default: false },
  },
})
const minutes = Number(args.minutes)
const faultRate = Number(args['fault-rate'])
const seed = Number(args.seed)
const objectsMode = args.objects === undefined ? undefined : Number(args.objects)
const epochMinutes = Math.min(Number(args['epoch-minutes']), minutes)
for (const [name, value] of Object.entries({ minutes, faultRate, seed, epochMinutes })) {
  if (!Number.isFinite(value) || value < 0) throw new Error(`bad --${name}: ${value}`)
}
if (objectsMode !== undefined && !(Number.isSafeInteger(objectsMode) && objectsMode >= 1000)) throw new Error('--objects: at least 1000')

const KiB = 1024
const MiB = 1024 * KiB
const BUCKET = 'soak'
const CLIENT = { region: 'us-east-1', credentials: { accessKeyId: 'soak', secretAccessKey: 'soak' }, forcePathStyle: true }

// ------------------------------------------------------------------------------ data

/** Deterministic bytes for an object: the AES-128-CTR keystream of a key made from `seed`. */
function content(objectSeed: number, size: number): Buffer {
  const key = createHash('sha256').update(`s3x-soak-${objectSeed}`).digest().subarray(0, 16)
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(size))
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex')

/** The workload's own choices. */
const random = mulberry32(seed * 7919 + 17)
const between = (low: number, high: number) => low + Math.floor(random() * (high - low + 1))
const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T
let nextSeed = seed * 1_000_003

/** What was written under a key (a virtual key for shard members). */
interface Expected {
  objectSeed: number
  size: number
  sha256: string
}
const written = new Map<string, Expected>()

function makeObject(size: number): { objectSeed: number; bytes: Buffer; expected: Expected } {
  const objectSeed = nextSeed++
  const bytes = content(objectSeed, size)
  return { objectSeed, bytes, expected: { objectSeed, size, sha256: sha256(bytes) } }
}

// ------------------------------------------------------------------------------ bookkeeping

const stats = {
  writes: {
    putObject: { ops: 0, bytes: 0, multipart: 0 },
    shards: { ops: 0, members: 0, bytes: 0 },
    appends: { ops: 0, entries: 0 },
    writers: { ops: 0, entries: 0 },
  },
  reads: {
    iterObjects: { ops: 0, objects: 0, bytes: 0 },
    iterObjectsFromKeys: { ops: 0, objects: 0, bytes: 0 },
    getObject: { ops: 0, bytes: 0 },
    ranges: { ops: 0, bytes: 0 },
  },
  checked: { objects: 0, bytes: 0 },
  final: { roots: 0, entries: 0, bytes: 0, uploadsProbed: 0 },
  typedErrors: {} as Record<string, number>,
  fatal: 0,
  fatalSamples: [] as string[],
  rssAtEpochEnds: [] as number[],
  /** Heap in use after a full GC at each epoch end (only when run with --expose-gc): flat if nothing leaks. */
  heapAfterGcAtEpochEnds: [] as number[],
  /** Seconds each epoch's final check took (with the load going on, but for the last). */
  epochChecks: [] as number[],
}

function fatal(message: string): void {
  stats.fatal++
  if (stats.fatalSamples.length < 20) stats.fatalSamples.push(message)
  console.error(`FATAL: ${message}`)
}

/** `Name ← Cause(operation status)`: the chain of an error, for counting by type. */
function describe(error: unknown, depth = 0): string {
  if (!(error instanceof Error)) return String(error)
  const detail = error as Error & { operation?: string; statusCode?: number }
  let text = error.name
  if (detail.operation) text += `(${detail.operation}${detail.statusCode ? ` ${detail.statusCode}` : ''})`
  if (error.cause !== undefined && depth < 2) text += ` ← ${describe(error.cause, depth + 1)}`
  return text
}

/** Runs one operation: typed failures are counted, anything else (or an IntegrityError) is fatal. */
async function attempt(kind: string, fn: () => Promise<void>): Promise<boolean> {
  try {
    await fn()
    return true
  } catch (error) {
    const chain = describe(error)
    if (error instanceof IntegrityError || (error instanceof Error && error.cause instanceof IntegrityError)) {
      fatal(`${kind}: ${chain}: ${(error as Error).message}`)
    } else if (error instanceof S3ExchangeError) {
      const name = `${kind}: ${chain}`
      stats.typedErrors[name] = (stats.typedErrors[name] ?? 0) + 1
    } else {
      fatal(`${kind}: untyped error ${chain}: ${error instanceof Error ? error.stack : String(error)}`)
    }
    return false
  }
}

/** Checks bytes read under `key` against what was written. */
function check(where: string, key: string, bytes: Uint8Array): void {
  const expected = written.get(key)
  if (expected === undefined) {
    fatal(`${where}: read ${key}, which was never written`)
    return
  }
  if (bytes.byteLength !== expected.size || sha256(bytes) !== expected.sha256) {
    fatal(`${where}: ${key}: ${bytes.byteLength} bytes that do not match the ${expected.size} written`)
    return
  }
  stats.checked.objects++
  stats.checked.bytes += bytes.byteLength
}

function keyOf(entry: EntryWithBody['entry']): string {
  return entry.kind === 'shard' ? entry.archive_key : (entry.key as string)
}

// ------------------------------------------------------------------------------ servers

async function startServer(storageDir: string): Promise<{ endpoint: string; child: ChildProcess; stop(): Promise<void> }> {
  const code = `import { startFauxqs } from 'fauxqs'
const server = await startFauxqs({ port: 0, host: '127.0.0.1', logger: false, s3StorageDir: process.argv[1] })
process.stdout.write(JSON.stringify({ endpoint: server.address }) + '\\n')
process.stdin.on('end', () => server.stop().then(() => process.exit(0), () => process.exit(1)))
process.stdin.resume()`
  const child = spawn(process.execPath, ['--input-type=module', '-e', code, storageDir], {
    cwd: new URL('..', import.meta.url).pathname,
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  const line = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
    lines.once('line', (first) => {
      lines.close()
      resolve(first)
    })
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)))
  })
  return {
    endpoint: (JSON.parse(line) as { endpoint: string }).endpoint,
    child,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve())
        child.stdin?.end()
      }),
  }
}

/** Peak RSS of a process in MB (VmHWM), or undefined where /proc is not there. */
function peakRssOf(pid: number | undefined): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1]
    return kb === undefined ? undefined : Number(kb) / 1024
  } catch {
    return undefined
  }
}
const ownPeakRss = () => process.resourceUsage().maxRSS / 1024

const storageDir = mkdtempSync(join(tmpdir(), 's3x-soak-'))
const server = await startServer(storageDir)
const cleanClient = new S3Client({ endpoint: server.endpoint, ...CLIENT })
await cleanClient.send(new CreateBucketCommand({ Bucket: BUCKET }))
const faults = randomFaults({ seed, rate: faultRate, resetRate: faultRate, dropRate: faultRate, delayRate: faultRate, maxDelayMs: 200 })
const proxy = await startS3Proxy({ target: server.endpoint, enforceConditionalWrites: true, intercept: faults, recordRequests: false })
const RETRIES = { maxAttempts: 10, baseDelayMs: 10, maxDelayMs: 1000 }
const faultyClient = new S3Client({ endpoint: proxy.endpoint, ...CLIENT, ...retryQuickly(RETRIES) })
const started: MultipartUpload[] = trackMultipartUploads(faultyClient)
const store = new S3ExchangeStore({ client: faultyClient, bucket: BUCKET })
const clean = new S3ExchangeStore({ client: cleanClient, bucket: BUCKET })

async function exists(key: string): Promise<boolean> {
  try {
    await cleanClient.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }))
    return true
  } catch (error) {
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false
    throw error
  }
}

/**
 * Reads a whole root through the clean client with verify: each entry it should hold (`expected`)
 * exactly once, nothing else, every byte as written.
 */
async function verifyRoot(root: string, expected: ReadonlySet<string>): Promise<void> {
  const seen = new Set<string>()
  try {
    for await (const { entry, body } of clean.iterObjects(root, { verify: true, concurrency: 16 })) {
      const key = keyOf(entry)
      const bytes = await body.bytes()
      if (seen.has(key)) fatal(`final check of ${root}: ${key} is there twice`)
      seen.add(key)
      if (!expected.has(key)) fatal(`final check of ${root}: ${key} is there but was not published by a write that succeeded`)
      check(`final check of ${root}`, key, bytes)
      stats.final.entries++
      stats.final.bytes += bytes.byteLength
    }
  } catch (error) {
    fatal(`final check of ${root}: ${describe(error)}: ${(error as Error).message}`)
  }
  for (const key of expected) if (!seen.has(key)) fatal(`final check of ${root}: ${key} is missing`)
  stats.final.roots++
}

/** No multipart upload started under `prefix` is still open. */
async function verifyUploads(prefix: string): Promise<void> {
  const mine = started.filter((upload) => upload.key.startsWith(prefix))
  stats.final.uploadsProbed += mine.length
  const open = await pendingMultipartUploads(cleanClient, BUCKET, mine, { prefix })
  for (const upload of open) fatal(`multipart upload left open: ${upload.key} (${upload.uploadId})`)
}

// ------------------------------------------------------------------------------ the soak

/** A period of the soak with its own prefix; verified whole and deleted when the next one starts. */
class Epoch {
  readonly prefix: string
  readonly sharedRoot: string
  readonly shardedRoot: string
  /** Root → the keys it must hold (those of writes that succeeded). */
  readonly roots = new Map<string, Set<string>>()
  /** Keys written in this epoch: loose objects and members. */
  readonly keys: string[] = []
  readonly looseKeys: string[] = []
  readonly n: number
  active = 0
  #idle: (() => void) | undefined

  constructor(n: number) {
    this.n = n
    this.prefix = `soak/e${n}/`
    this.sharedRoot = `${this.prefix}shared/manifest.jsonl`
    this.shardedRoot = `${this.prefix}sharded/manifest.jsonl`
    this.roots.set(this.sharedRoot, new Set())
    this.roots.set(this.shardedRoot, new Set())
  }

  release(): void {
    this.active--
    if (this.active === 0) this.#idle?.()
  }

  idle(): Promise<void> {
    return this.active === 0 ? Promise.resolve() : new Promise((resolve) => (this.#idle = resolve))
  }

  register(key: string, expected: Expected, loose: boolean): void {
    written.set(key, expected)
    this.keys.push(key)
    if (loose) this.looseKeys.push(key)
  }

  /** Roots that hold something. */
  published(): string[] {
    return [...this.roots].filter(([, keys]) => keys.size > 0).map(([root]) => root)
  }
}

let current = new Epoch(1)
let running = true

/** Runs `fn` with the current epoch held (it is not verified or deleted meanwhile). */
async function withEpoch(fn: (epoch: Epoch) => Promise<void>): Promise<void> {
  const epoch = current
  epoch.active++
  try {
    await fn(epoch)
  } finally {
    epoch.release()
  }
}

function looseSize(): number {
  const r = random()
  if (r < 0.01) return between(9 * MiB, 12 * MiB) // multipart
  if (r < 0.06) return between(256 * KiB, 2 * MiB)
  return between(1, 64 * KiB)
}

async function looseWriter(): Promise<void> {
  while (running) {
    await withEpoch(async (epoch) => {
      const size = looseSize()
      const { bytes, expected } = makeObject(size)
      const key = `${epoch.prefix}loose/${expected.objectSeed}.bin`
      await attempt('putObject', async () => {
        const entry = await store.putObject(key, bytes)
        if (entry.sha256 !== expected.sha256 || entry.size_bytes !== size) fatal(`putObject ${key}: the entry does not describe the bytes`)
        epoch.register(key, expected, true)
        stats.writes.putObject.ops++
        stats.writes.putObject.bytes += size
        if (size > 8 * MiB) stats.writes.putObject.multipart++
      })
    })
  }
}

async function sharder(): Promise<void> {
  while (running) {
    await withEpoch(async (epoch) => {
      const compression = random() < 0.5 ? 'gzip' : null
      const archiveKey = `${epoch.prefix}sharded/shards/${nextSeed}.tar${compression ? '.gz' : ''}`
      const members = between(20, 300)
      const big = random() < 0.05 ? between(0, members - 1) : -1
      const items: (ShardItem & { expected: Expected })[] = Array.from({ length: members }, (_, i) => {
        const { bytes, expected } = makeObject(i === big ? between(9 * MiB, 10 * MiB) : between(0, 32 * KiB))
        return { source: bytes, member_path: `m/${i}.bin`, expected }
      })
      let entry: ShardEntry | undefined
      const ok = await attempt('putShardArchive', async () => {
        entry = (await store.putShardArchive(archiveKey, items, { compression })).entry
      })
      if (!ok) {
        if (await exists(archiveKey)) fatal(`putShardArchive ${archiveKey} failed but the archive is there`)
        return
      }
      for (const item of items) epoch.register(`${archiveKey}#${item.member_path}`, item.expected, false)
      stats.writes.shards.ops++
      stats.writes.shards.members += members
      stats.writes.shards.bytes += items.reduce((sum, item) => sum + item.expected.size, 0)
      // This worker is the only one that writes this root: a failure must leave it as it was.
      const before = (await exists(epoch.shardedRoot)) ? sha256(await (await clean.getObject(epoch.shardedRoot)).bytes()) : undefined
      const published = await attempt('putSharded', async () => {
        await store.putSharded(epoch.shardedRoot, [entry as ShardEntry])
      })
      const target = epoch.roots.get(epoch.shardedRoot) as Set<string>
      if (published) for (const item of items) target.add(`${archiveKey}#${item.member_path}`)
      else {
        const after = (await exists(epoch.shardedRoot)) ? sha256(await (await clean.getObject(epoch.shardedRoot)).bytes()) : undefined
        if (after !== before) fatal(`putSharded to ${epoch.shardedRoot} failed but the root changed`)
      }
    })
  }
}

async function appender(id: number): Promise<void> {
  while (running) {
    await withEpoch(async (epoch) => {
      const entries: FileEntry[] = []
      for (let i = 0, n = between(1, 4); i < n; i++) {
        const { bytes, expected } = makeObject(between(0, 16 * KiB))
        const key = `${epoch.prefix}shared/objects/${id}-${expected.objectSeed}.bin`
        await attempt('putObject', async () => {
          entries.push(await store.putObject(key, bytes))
          epoch.register(key, expected, true)
          stats.writes.putObject.ops++
          stats.writes.putObject.bytes += bytes.byteLength
        })
      }
      if (entries.length === 0) return
      const ok = await attempt('append_parts', async () => {
        await store.writeManifest(epoch.sharedRoot, entries, { mode: 'append_parts', maxAttempts: 100 })
      })
      if (ok) {
        const target = epoch.roots.get(epoch.sharedRoot) as Set<string>
        for (const entry of entries) target.add(entry.key)
        stats.writes.appends.ops++
        stats.writes.appends.entries += entries.length
      }
    })
    await sleep(between(0, 300))
  }
}

async function manifestWriter(): Promise<void> {
  let n = 0
  while (running) {
    await withEpoch(async (epoch) => {
      const root = `${epoch.prefix}writer-${++n}/manifest.jsonl`
      const compression = random() < 0.5 ? 'gzip' : null
      const writer = store.openManifestWriter(root, { shardSize: { maxEntries: 50 }, partMaxEntries: 40, shardCompression: compression })
      const pending: { key: string; expected: Expected; loose: boolean }[] = []
      const listed = new Set<string>()
      const ok = await attempt('ManifestWriter', async () => {
        for (let i = 0, loose = between(0, 20); i < loose; i++) {
          const { bytes, expected } = makeObject(looseSize() % (2 * MiB))
          const key = `${epoch.prefix}writer-${n}/loose-${i}.bin`
          await writer.putObject(key, bytes)
          pending.push({ key, expected, loose: true })
          listed.add(key)
        }
        for (let i = 0, members = between(0, 150); i < members; i++) {
          const { bytes, expected } = makeObject(i === 7 && random() < 0.1 ? between(9 * MiB, 10 * MiB) : between(0, 32 * KiB))
          const member = await writer.addToShard(`w/${i}.bin`, bytes)
          pending.push({ key: member.key, expected, loose: false })
          listed.add(member.key)
        }
        // Entries of objects written before, by other workers.
        for (let i = 0, existing = Math.min(between(0, 10), epoch.looseKeys.length); i < existing; i++) {
          const key = pick(epoch.looseKeys)
          if (listed.has(key)) continue
          await writer.addFile(key, { sizeBytes: written.get(key)?.size })
          listed.add(key)
        }
        await writer.close()
      })
      if (ok) {
        for (const { key, expected, loose } of pending) epoch.register(key, expected, loose)
        epoch.roots.set(root, listed)
        stats.writes.writers.ops++
        stats.writes.writers.entries += listed.size
      } else if (await exists(root)) fatal(`ManifestWriter for ${root} failed but the root is there`)
    })
  }
}

async function iterReader(): Promise<void> {
  while (running) {
    await withEpoch(async (epoch) => {
      const roots = epoch.published()
      if (roots.length === 0) return void (await sleep(200))
      const root = pick(roots)
      await attempt('iterObjects', async () => {
        const options = { verify: true, concurrency: between(1, 16), shardConcurrency: between(1, 2) }
        let objects = 0
        for await (const { entry, body } of store.iterObjects(root, options)) {
          const bytes = await body.bytes()
          check(`iterObjects(${root})`, keyOf(entry), bytes)
          objects++
          stats.reads.iterObjects.objects++
          stats.reads.iterObjects.bytes += bytes.byteLength
        }
        stats.reads.iterObjects.ops++
        // A root is picked once something was published to it: it is never empty.
        if (objects === 0) fatal(`iterObjects(${root}): nothing read from a published root`)
      })
    })
  }
}

async function keysReader(): Promise<void> {
  while (running) {
    await withEpoch(async (epoch) => {
      if (epoch.keys.length === 0) return void (await sleep(200))
      const keys = [...new Set(Array.from({ length: between(1, 60) }, () => pick(epoch.keys)))]
      await attempt('iterObjectsFromKeys', async () => {
        const seen = new Set<string>()
        for await (const { entry, body } of store.iterObjectsFromKeys(keys, { verify: true, concurrency: between(1, 16) })) {
          const bytes = await body.bytes()
          check('iterObjectsFromKeys', entry.key, bytes)
          seen.add(entry.key)
          stats.reads.iterObjectsFromKeys.objects++
          stats.reads.iterObjectsFromKeys.bytes += bytes.byteLength
        }
        for (const key of keys) if (!seen.has(key)) fatal(`iterObjectsFromKeys: ${key} was asked for and not given`)
        stats.reads.iterObjectsFromKeys.ops++
      })
    })
  }
}

async function getReader(): Promise<void> {
  while (running) {
    await withEpoch(async (epoch) => {
      if (epoch.keys.length === 0) return void (await sleep(200))
      const key = pick(epoch.keys)
      await attempt('getObject', async () => {
        const bytes = await (await store.getObject(key)).bytes()
        check('getObject', key, bytes)
        stats.reads.getObject.ops++
        stats.reads.getObject.bytes += bytes.byteLength
      })
      if (epoch.looseKeys.length === 0) return
      const loose = pick(epoch.looseKeys)
      const expected = written.get(loose) as Expected
      if (expected.size < 2) return
      const start = between(0, expected.size - 2)
      const end = between(start, Math.min(expected.size - 1, start + 4 * MiB))
      await attempt('ranged getObject', async () => {
        const body = await getObjectBody(store.context(), loose, { start, end })
        const bytes = await body.bytes()
        const want = content(expected.objectSeed, end + 1).subarray(start)
        if (!Buffer.from(bytes).equals(want)) fatal(`ranged read ${loose} ${start}-${end}: the bytes do not match`)
        else {
          stats.checked.objects++
          stats.checked.bytes += bytes.byteLength
        }
        stats.reads.ranges.ops++
        stats.reads.ranges.bytes += bytes.byteLength
      })
    })
  }
}

/** Verifies an epoch whole through the clean client, then deletes it. */
async function closeEpoch(epoch: Epoch): Promise<void> {
  await epoch.idle()
  const began = Date.now()
  const roots = [...epoch.roots].filter(([, keys]) => keys.size > 0)
  let next = 0
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < roots.length) {
        const [root, keys] = roots[next++] as [string, Set<string>]
        await verifyRoot(root, keys)
      }
    }),
  )
  await verifyUploads(epoch.prefix)
  stats.rssAtEpochEnds.push(Math.round(process.memoryUsage().rss / MiB))
  await clean.deletePrefix(epoch.prefix)
  for (const key of epoch.keys) written.delete(key)
  // What this epoch wrote is forgotten; the next one's keys (a few minutes' worth) remain.
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc) {
    gc()
    stats.heapAfterGcAtEpochEnds.push(Math.round(process.memoryUsage().heapUsed / MiB))
    console.log(`epoch ${epoch.n}: heap after a full GC ${stats.heapAfterGcAtEpochEnds.at(-1)} MB`)
  }
  const seconds = (Date.now() - began) / 1000
  stats.epochChecks.push(Math.round(seconds))
  console.log(`epoch ${epoch.n}: ${roots.length} roots verified in ${seconds.toFixed(0)} s, then deleted`)
}

/** Free space where the server keeps its objects, in GB. */
const freeGb = () => {
  const fs = statfsSync(storageDir)
  return (fs.bavail * fs.bsize) / 2 ** 30
}
/** Set when the load stopped early to keep the disk from filling up. */
let stoppedEarly: string | undefined

function progress(startedAt: number): void {
  const w = stats.writes
  const r = stats.reads
  const memory = process.memoryUsage()
  console.log(
    `[${((Date.now() - startedAt) / 60_000).toFixed(1)} min] puts ${w.putObject.ops}, shards ${w.shards.ops}, appends ${w.appends.ops}, writers ${w.writers.ops}; ` +
      `read ${r.iterObjects.objects + r.iterObjectsFromKeys.objects + r.getObject.ops + r.ranges.ops} objects, ${(stats.checked.bytes / MiB).toFixed(0)} MiB checked; ` +
      `faults ${faults.injected.errors} errors, ${proxy.resets} cuts, ${proxy.drops} drops; typed errors ${Object.values(stats.typedErrors).reduce((a, b) => a + b, 0)}; fatal ${stats.fatal}; ` +
      `rss ${Math.round(memory.rss / MiB)} MB (heap ${Math.round(memory.heapUsed / MiB)} MB, buffers ${Math.round(memory.arrayBuffers / MiB)} MB); ${freeGb().toFixed(0)} GB free`,
  )
}

async function soak(): Promise<{ load: number; total: number }> {
  const startedAt = Date.now()
  const deadline = startedAt + minutes * 60_000
  const workers = [
    looseWriter(),
    looseWriter(),
    sharder(),
    appender(1),
    appender(2),
    appender(3),
    appender(4),
    manifestWriter(),
    iterReader(),
    iterReader(),
    keysReader(),
    getReader(),
    getReader(),
  ].map((worker) => worker.catch((error: unknown) => fatal(`a worker died: ${describe(error)}: ${(error as Error).stack}`)))
  let epochEnds = startedAt + epochMinutes * 60_000
  // The check of the epoch before runs beside the load; the next epoch ends only once it is done.
  let closing: Promise<void> | undefined
  let closed = true
  while (Date.now() < deadline) {
    await sleep(Math.min(30_000, Math.max(0, deadline - Date.now())))
    progress(startedAt)
    if (freeGb() < 8) {
      stoppedEarly = `the load stopped after ${((Date.now() - startedAt) / 60_000).toFixed(1)} min: less than 8 GB of disk left`
      console.log(stoppedEarly)
      break
    }
    if (closed && Date.now() >= epochEnds && Date.now() < deadline - 60_000) {
      const old = current
      current = new Epoch(old.n + 1)
      epochEnds = Date.now() + epochMinutes * 60_000
      closed = false
      closing = closeEpoch(old).finally(() => {
        closed = true
      })
    }
  }
  running = false
  await Promise.all(workers)
  await closing
  const load = (Date.now() - startedAt) / 60_000
  await closeEpoch(current)
  return { load, total: (Date.now() - startedAt) / 60_000 }
}

/** Writes `count` objects through the faults into one manifest, then reads every entry back. */
async function writeMany(count: number): Promise<{ writeSeconds: number; verifySeconds: number; loose: number; shards: number }> {
  const root = `many/manifest.jsonl`
  const loose = Math.round(count * 0.3)
  const perShard = 1000
  const shardMembers = count - loose
  const gzipMembers = Math.round(shardMembers / 2)
  const plainMembers = shardMembers - gzipMembers
  const expectedKeys = new Set<string>()
  const register = (key: string, expected: Expected) => {
    written.set(key, expected)
    expectedKeys.add(key)
  }
  const writeStart = Date.now()
  let shards = 0
  const ok = await attempt('write many', async () => {
    const writer = store.openManifestWriter(root, { shardSize: { maxEntries: perShard }, shardCompression: 'gzip' })
    // Loose objects: 32 uploads at a time (entries are added in call order).
    const inFlight = new Set<Promise<unknown>>()
    for (let i = 0; i < loose; i++) {
      const { bytes, expected } = makeObject(between(1, 8 * KiB))
      const key = `many/loose/${String(i).padStart(6, '0')}.bin`
      const upload = writer.putObject(key, bytes).then(() => register(key, expected))
      inFlight.add(upload)
      void upload.finally(() => inFlight.delete(upload)).catch(() => {})
      if (inFlight.size >= 32) await Promise.race(inFlight)
      if (i % 5000 === 4999) console.log(`${i + 1} loose objects written`)
    }
    await Promise.all(inFlight)
    // tar.gz shards through the writer.
    for (let i = 0; i < gzipMembers; i++) {
      const { bytes, expected } = makeObject(between(0, 8 * KiB))
      const member = await writer.addToShard(`g/${String(i).padStart(6, '0')}.bin`, bytes)
      register(member.key, expected)
      if (i % 10_000 === 9999) console.log(`${i + 1} tar.gz members written`)
    }
    await writer.flushShard()
    shards += Math.ceil(gzipMembers / perShard)
    // Plain tar shards written apart, their entries added to the same manifest.
    for (let first = 0; first < plainMembers; first += perShard) {
      const archiveKey = `many/plain/shard-${String(first / perShard).padStart(4, '0')}.tar`
      const items = Array.from({ length: Math.min(perShard, plainMembers - first) }, (_, j) => {
        const { bytes, expected } = makeObject(between(0, 8 * KiB))
        return { source: bytes, member_path: `p/${String(first + j).padStart(6, '0')}.bin`, expected }
      })
      const shard = await store.putShardArchive(archiveKey, items, { compression: null })
      for (const item of items) register(`${archiveKey}#${item.member_path}`, item.expected)
      await writer.addEntry(shard.entry)
      shards++
    }
    console.log(`${plainMembers} plain tar members written; publishing`)
    const result = (await writer.close()) as CommitResult
    console.log(`published ${result.entries} entries in ${result.parts.length} part(s)`)
  })
  const writeSeconds = (Date.now() - writeStart) / 1000
  if (!ok) fatal('writing the objects failed (see the typed errors)')
  stats.writes.putObject.ops = loose
  stats.writes.shards.ops = shards
  stats.writes.shards.members = shardMembers
  if (expectedKeys.size !== count && ok) fatal(`${expectedKeys.size} objects registered, ${count} expected`)
  const verifyStart = Date.now()
  if (ok) await verifyRoot(root, expectedKeys)
  await verifyUploads('many/')
  return { writeSeconds, verifySeconds: (Date.now() - verifyStart) / 1000, loose, shards }
}

// ------------------------------------------------------------------------------ report

const mb = (bytes: number) => `${(bytes / MiB).toLocaleString('en-US', { maximumFractionDigits: 0 })} MiB`
const int = (n: number) => Math.round(n).toLocaleString('en-US')

function faultLine(): string {
  const { errors, byStatus, resets, drops, delays } = faults.injected
  return (
    `${int(faults.injected.requests)} requests through the proxy: ${int(errors)} answered with an error (${Object.entries(byStatus)
      .map(([status, n]) => `${int(n)} × ${status}`)
      .join(', ')}), ${int(proxy.resets)} bodies cut (${int(resets)} cuts planned; a cut past a body's end sends it whole), ` +
    `${int(proxy.drops)} responses dropped after the server carried the request out (${int(drops)} planned), ` +
    `${int(delays)} delayed up to 200 ms, ${int(proxy.conflicts)} conditional writes refused (412)`
  )
}

function typedLine(): string {
  const entries = Object.entries(stats.typedErrors).sort((a, b) => b[1] - a[1])
  return entries.length === 0 ? 'none' : entries.map(([name, n]) => `${int(n)} × ${name}`).join('; ')
}

function setup(command: string): string {
  return (
    `\`${command}\`, run on ${new Date().toISOString().slice(0, 10)}: ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, ` +
    `Node ${process.version}. fauxqs (objects as files in a temporary folder) in a child process; the fault proxy ` +
    `(\`randomFaults\`, seed ${seed}, conditional writes enforced) and the client in this one. Faults: ${faultRate * 100}% of requests ` +
    `answered 503 SlowDown or 500 InternalError (half each); of the others, ${faultRate * 100}% of GET responses cut at a random point of ` +
    `the body and ${faultRate * 100}% of responses (CreateMultipartUpload's excepted) dropped after the server carried the request out; ` +
    `${faultRate * 100}% of requests delayed up to 200 ms; no cap on faults in a row. Client: the AWS SDK's retry ` +
    `middleware with \`retryQuickly({ maxAttempts: ${RETRIES.maxAttempts}, baseDelayMs: ${RETRIES.baseDelayMs}, maxDelayMs: ${RETRIES.maxDelayMs} })\` ` +
    `(its standard error classes, more attempts, short pauses), response checksum validation at the SDK default; reads resume ` +
    `cut bodies 3 times (the library default). Every byte read is compared (SHA-256) with what was written; roots are checked ` +
    `through a client without faults.`
  )
}

function replaceSection(heading: string, body: string): void {
  const path = new URL('./RESULTS.md', import.meta.url)
  const text = readFileSync(path, 'utf8')
  const section = `## ${heading}\n\n${body.trim()}\n`
  const start = text.indexOf(`\n## ${heading}\n`)
  if (start === -1) {
    writeFileSync(path, `${text.trimEnd()}\n\n${section}`)
    return
  }
  const next = text.indexOf('\n## ', start + 1)
  writeFileSync(path, `${text.slice(0, start + 1)}${section}${next === -1 ? '' : `\n${text.slice(next + 1)}`}`)
}

let exitCode = 0
try {
  if (objectsMode === undefined) {
    console.log(`soak: ${minutes} min, fault rate ${faultRate}, seed ${seed}; server ${server.endpoint}, proxy ${proxy.endpoint}`)
    const ran = await soak()
    const w = stats.writes
    const r = stats.reads
    const passed = stats.fatal === 0
    const serverRss = peakRssOf(server.child.pid)
    const rows: [string, string][] = [
      [
        'result',
        passed
          ? '**passed**: every byte read matched, every root held exactly what was published, no upload left open, no untyped error'
          : `**FAILED**: ${stats.fatal} problem(s): ${stats.fatalSamples.slice(0, 5).join('; ')}`,
      ],
      [
        'duration',
        `${ran.load.toFixed(1)} min of load (${int(current.n)} epoch(s) of about ${epochMinutes} min, each verified whole through a client without faults and deleted at its end), ${ran.total.toFixed(1)} min in all${stoppedEarly ? `; ${stoppedEarly}` : ''}`,
      ],
      [
        'writes',
        `putObject ${int(w.putObject.ops)} (${mb(w.putObject.bytes)}, ${int(w.putObject.multipart)} multipart); putShardArchive + putSharded ${int(w.shards.ops)} shards (${int(w.shards.members)} members, ${mb(w.shards.bytes)}); ` +
          `append_parts to one root from 4 writers ${int(w.appends.ops)} (${int(w.appends.entries)} entries); ManifestWriter ${int(w.writers.ops)} closed (${int(w.writers.entries)} entries)`,
      ],
      [
        'reads',
        `iterObjects (verify) ${int(r.iterObjects.ops)} manifests, ${int(r.iterObjects.objects)} objects (${mb(r.iterObjects.bytes)}); iterObjectsFromKeys (verify) ${int(r.iterObjectsFromKeys.ops)} calls, ${int(r.iterObjectsFromKeys.objects)} objects; ` +
          `getObject ${int(r.getObject.ops)} (${mb(r.getObject.bytes)}); ranged reads ${int(r.ranges.ops)} (${mb(r.ranges.bytes)})`,
      ],
      ['bytes compared with what was written', `${int(stats.checked.objects)} objects, ${mb(stats.checked.bytes)}`],
      [
        'final checks (no faults)',
        `${int(stats.final.roots)} roots, ${int(stats.final.entries)} entries (${mb(stats.final.bytes)}); ${int(stats.final.uploadsProbed)} multipart uploads probed, none open; seconds per epoch check (8 roots at a time, beside the load but for the last): ${stats.epochChecks.join(', ')}`,
      ],
      ['faults injected', faultLine()],
      ['typed errors (operations that failed cleanly)', typedLine()],
      [
        'peak RSS',
        `client and proxy ${Math.round(ownPeakRss())} MB${serverRss ? `; server ${Math.round(serverRss)} MB` : ''}; client RSS at each epoch end: ${stats.rssAtEpochEnds.join(', ')} MB${stats.heapAfterGcAtEpochEnds.length ? `; heap after a full GC at each epoch end: ${stats.heapAfterGcAtEpochEnds.join(', ')} MB` : ''}`,
      ],
    ]
    const command = `node bench/soak.ts --minutes ${minutes} --fault-rate ${faultRate} --seed ${seed}${args.record ? ' --record' : ''}`
    const report = `${setup(command)}\n\n| figure | value |\n| --- | --- |\n${rows.map(([k, v]) => `| ${k} | ${v} |`).join('\n')}\n`
    console.log(`\n${report}`)
    if (args.record) replaceSection('Soak', report)
    exitCode = passed ? 0 : 1
  } else {
    console.log(`writing ${objectsMode} objects, fault rate ${faultRate}, seed ${seed}`)
    const result = await writeMany(objectsMode)
    const passed = stats.fatal === 0
    const serverRss = peakRssOf(server.child.pid)
    const rows: [string, string][] = [
      [
        'result',
        passed
          ? `**passed**: all ${int(objectsMode)} entries exist and verify, no upload left open`
          : `**FAILED**: ${stats.fatal} problem(s): ${stats.fatalSamples.slice(0, 5).join('; ')}`,
      ],
      [
        'written',
        `${int(result.loose)} loose objects (1 B–8 KiB, ManifestWriter.putObject, 32 at a time) and ${int(objectsMode - result.loose)} members of ${int(result.shards)} shards of 1,000 (half tar.gz by the ManifestWriter, half plain tar by putShardArchive), one manifest`,
      ],
      ['write time, through the faults', `${result.writeSeconds.toFixed(1)} s (${int(objectsMode / result.writeSeconds)} objects/s)`],
      [
        'check time (iterObjects with verify, no faults)',
        `${result.verifySeconds.toFixed(1)} s (${int(stats.final.entries)} entries, ${mb(stats.final.bytes)})`,
      ],
      ['faults injected', faultLine()],
      ['typed errors', typedLine()],
      ['peak RSS', `client and proxy ${Math.round(ownPeakRss())} MB${serverRss ? `; server ${Math.round(serverRss)} MB` : ''}`],
    ]
    const command = `node bench/soak.ts --objects ${objectsMode} --fault-rate ${faultRate} --seed ${seed}${args.record ? ' --record' : ''}`
    const report = `${setup(command)}\n\n| figure | value |\n| --- | --- |\n${rows.map(([k, v]) => `| ${k} | ${v} |`).join('\n')}\n`
    console.log(`\n${report}`)
    if (args.record) replaceSection('Writing 100,000 objects through faults', report)
    exitCode = passed ? 0 : 1
  }
} catch (error) {
  console.error(error)
  exitCode = 2
} finally {
  faultyClient.destroy()
  cleanClient.destroy()
  await proxy.stop()
  await server.stop()
  rmSync(storageDir, { recursive: true, force: true })
}
process.exit(exitCode)
