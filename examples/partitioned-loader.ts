/**
 * A data loader spread across processes: each of N workers reads its own share of one dataset,
 * with no coordinator and no shared state, only `iterObjects(manifest, { partition: { index, count } })`.
 *
 * The parent starts an S3 server, publishes a small dataset (tar and tar.gz shards, plus loose
 * files, behind a manifest with parts), then starts N copies of this file as worker processes.
 * Each worker is configured by the environment alone (S3_ENDPOINT_URL, S3_BUCKET, credentials),
 * as it would be on another machine; it reads the manifest, keeps its share (whole shards and
 * loose files, balanced by size), reads every sample of it in batches, and reports what it read
 * as one JSON line on stdout. The parent checks that the shares are disjoint and together give
 * the dataset, byte for byte, with no shard split between workers.
 *
 * Runs against an embedded local S3 (fauxqs, in the parent process) by default, or against the
 * server named by S3_ENDPOINT_URL (with S3_AWS_ACCESS_KEY_ID, S3_AWS_SECRET_ACCESS_KEY, S3_REGION
 * and S3_BUCKET) when that is set.
 *
 *   node examples/partitioned-loader.ts [workers]    (after npx pnpm@10 build; default 4 workers)
 */
import { spawn } from 'node:child_process'
import { createHash, randomBytes, randomInt } from 'node:crypto'
import { startLocalS3 } from '@s3exchange/testing'
import { type EntryWithBody, type FileEntry, S3ExchangeStore, Shard, type ShardEntry, type ShardItem } from 's3exchange'

/** What a worker reports: its share, object by object. */
interface Report {
  index: number
  count: number
  objects: number
  bytes: number
  batches: number
  /** Archives this worker read members of. */
  shards: string[]
  looseFiles: number
  /** Key (virtual key for members) and the sha256 of its bytes. */
  digests: [key: string, sha256: string][]
}

const BATCH_SIZE = 8

if (process.argv[2] === '--worker') await worker(Number(process.argv[3]), Number(process.argv[4]))
else await parent(Number(process.argv[2] ?? 4))

// ------------------------------------------------------------------------------------ a worker

async function worker(index: number, count: number): Promise<void> {
  // Configured from the environment, as on any machine: S3_ENDPOINT_URL, S3_BUCKET, S3_AWS_*.
  const store = S3ExchangeStore.fromEnv({ envFile: false })
  const manifestKey = process.env.DATASET_MANIFEST as string
  const report: Report = { index, count, objects: 0, bytes: 0, batches: 0, shards: [], looseFiles: 0, digests: [] }
  const shards = new Set<string>()
  try {
    for await (const batch of batches(store.iterObjects(manifestKey, { partition: { index, count }, concurrency: 8 }), BATCH_SIZE)) {
      // A training step would go here; we check what arrived.
      for (const { entry, data } of batch) {
        const key = entry.key
        report.digests.push([key, createHash('sha256').update(data).digest('hex')])
        report.objects++
        report.bytes += data.byteLength
        if (entry.archive_key) shards.add(entry.archive_key)
        else report.looseFiles++
      }
      report.batches++
    }
  } finally {
    store.client.destroy()
  }
  report.shards = [...shards]
  process.stdout.write(`${JSON.stringify(report)}\n`)
}

/** Groups samples into batches, reading each body inside the loop (shard members stream past once). */
async function* batches(items: AsyncIterable<EntryWithBody>, size: number): AsyncGenerator<{ entry: FileEntry; data: Uint8Array }[]> {
  let batch: { entry: FileEntry; data: Uint8Array }[] = []
  for await (const { entry, body } of items) {
    batch.push({ entry: entry as FileEntry, data: await body.bytes() })
    if (batch.length === size) {
      yield batch
      batch = []
    }
  }
  if (batch.length > 0) yield batch
}

// ------------------------------------------------------------------------------------ the parent

async function parent(workers: number): Promise<void> {
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`usage: node examples/partitioned-loader.ts [workers ≥ 1], got ${workers}`)
  const s3 = await startLocalS3()
  const bucket = await s3.createBucket(s3.external ? undefined : 'partitioned-loader')
  const store = new S3ExchangeStore({ client: s3.client, bucket })
  const prefix = `examples/partitioned-loader/${randomBytes(4).toString('hex')}`
  try {
    console.log(`S3: ${s3.external ? 'external server' : 'embedded local S3'} at ${s3.endpoint}, bucket ${bucket}`)

    // --- Publish a dataset: 160 samples in shards of 16 (tar.gz and plain tar), and loose files -----
    const manifestKey = `${prefix}/manifest.jsonl`
    const loose: FileEntry[] = []
    for (let i = 0; i < 12; i++) {
      loose.push(await store.putObject(`${prefix}/loose/clip-${i}.bin`, randomBytes(randomInt(1_000, 6_000)), { id: `loose-${i}` }))
    }
    await store.writeManifest(manifestKey, loose, { mode: 'overwrite' })
    const samples: ShardItem[] = Array.from({ length: 160 }, (_, i) => ({
      source: randomBytes(randomInt(500, 4_000)), // audio-like: gzip gains little
      member_path: `${String(i).padStart(4, '0')}.bin`,
      id: `sample-${i}`,
    }))
    const shards: ShardEntry[] = []
    for (const batch of Shard.splitItems(samples, { maxEntries: 16, maxBytes: 1 << 30 })) {
      const compression = shards.length % 2 === 0 ? 'gzip' : null
      const archiveKey = `${prefix}/shards/shard-${String(shards.length).padStart(5, '0')}.tar${compression ? '.gz' : ''}`
      shards.push((await store.putShardArchive(archiveKey, batch, { compression })).entry)
    }
    await store.putSharded(manifestKey, shards, { updateMode: 'append_parts' })

    // What a single reader sees: the reference the shares must add up to.
    const expected = new Map<string, string>()
    let expectedBytes = 0
    for await (const { entry, body } of store.iterObjects(manifestKey)) {
      const data = await body.bytes()
      expected.set((entry as FileEntry).key, createHash('sha256').update(data).digest('hex'))
      expectedBytes += data.byteLength
    }
    console.log(
      `dataset: ${shards.length} shards (tar and tar.gz) and ${loose.length} loose files, ${expected.size} objects, ${expectedBytes} bytes`,
    )

    // --- Start the workers: this same file, one process each ------------------------------------
    const env = {
      ...process.env,
      S3_ENDPOINT_URL: s3.endpoint,
      S3_REGION: s3.region,
      S3_AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId,
      S3_AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
      S3_BUCKET: bucket,
      DATASET_MANIFEST: manifestKey,
    }
    console.log(`starting ${workers} worker processes\n`)
    const reports = await Promise.all(Array.from({ length: workers }, (_, index) => runWorker(index, workers, env)))

    // --- Check the shares ---------------------------------------------------------------------------
    const owner = new Map<string, number>()
    const shardOwner = new Map<string, number>()
    const sizeOf = new Map<string, number>(
      [...loose, ...shards].map((entry) => [entry.kind === 'shard' ? entry.archive_key : entry.key, entry.size_bytes ?? 0]),
    )
    for (const report of reports) {
      // What the worker downloaded: its loose files and its archives (the sizes it was balanced by).
      const looseKeys = report.digests.map(([key]) => key).filter((key) => sizeOf.has(key))
      const downloaded = [...looseKeys, ...report.shards].reduce((sum, key) => sum + (sizeOf.get(key) ?? 0), 0)
      console.log(
        `worker ${report.index}/${report.count}: ${report.shards.length} shards + ${report.looseFiles} loose files = ${report.objects} objects ` +
          `in ${report.batches} batches, ${report.bytes} bytes (${downloaded} bytes downloaded)`,
      )
      for (const [key, digest] of report.digests) {
        const other = owner.get(key)
        if (other !== undefined) throw new Error(`${key} was read by workers ${other} and ${report.index}`)
        owner.set(key, report.index)
        if (expected.get(key) !== digest)
          throw new Error(`worker ${report.index} read ${key} with the wrong bytes (or it is not in the dataset)`)
      }
      for (const archive of report.shards) {
        const other = shardOwner.get(archive)
        if (other !== undefined) throw new Error(`shard ${archive} was split between workers ${other} and ${report.index}`)
        shardOwner.set(archive, report.index)
      }
    }
    const missing = [...expected.keys()].filter((key) => !owner.has(key))
    if (missing.length > 0) throw new Error(`no worker read ${missing.length} objects, e.g. ${missing[0]}`)
    const bytes = reports.reduce((sum, report) => sum + report.bytes, 0)
    console.log(`\nshares are disjoint and complete: ${owner.size} objects, ${bytes} bytes, every shard read whole by one worker`)
  } finally {
    await store.deletePrefix(`${prefix}/`)
    await s3.stop()
  }
}

/** Runs this file as worker `index` of `count` and resolves to its report. */
function runWorker(index: number, count: number, env: NodeJS.ProcessEnv): Promise<Report> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [import.meta.filename, '--worker', String(index), String(count)], {
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let stdout = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk
    })
    child.on('error', reject)
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`worker ${index} exited with code ${code}`))
      else resolve(JSON.parse(stdout) as Report)
    })
  })
}
