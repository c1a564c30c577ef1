/**
 * A partitioned ETL, as a Kubernetes Indexed Job runs it (examples/partitioned-etl-job.yaml), or
 * an AWS Batch array job, a Slurm job array, torchrun or mpirun: N workers, each reading its own
 * share of one source dataset, transforming it, packing it into shards and appending one part to
 * one output root. Nothing coordinates the workers: each one's share comes from its engine's
 * environment (`partitionFromEnv()`), the split is the same on every worker, and the appends are
 * conditional writes that all land, whoever commits first.
 *
 * One worker, configured by the environment alone, as in a pod:
 *
 *   S3_BUCKET=… SOURCE_MANIFEST=… OUTPUT_ROOT=… JOB_COMPLETION_INDEX=2 JOB_COMPLETIONS=4 \
 *     node examples/partitioned-etl.ts --worker
 *
 * A whole run on this machine (the default): starts an S3 server, publishes a source dataset,
 * then for each engine starts N worker processes with that engine's variables, checks that the
 * output root holds every source item exactly once, transformed, and retries one worker (as
 * Kubernetes replaces a failed pod with one of the same index) to show that a retry whose part
 * already landed adds nothing.
 *
 *   node examples/partitioned-etl.ts [--workers 3] [--engines kubernetes,aws-batch,slurm,torchrun,open-mpi,explicit]
 *
 * Runs against an embedded local S3 (fauxqs, in this process) by default, or against the server
 * named by S3_ENDPOINT_URL (with S3_AWS_ACCESS_KEY_ID, S3_AWS_SECRET_ACCESS_KEY, S3_REGION and
 * S3_BUCKET). The embedded server does not enforce conditional writes, which appends rely on (AWS
 * S3, MinIO and Ceph do): the workers then reach it through the proxy of `@s3exchange/testing`,
 * which enforces them as AWS S3 does.
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import { pipe } from 'it-pipe'
import {
  type EntryWithBody,
  type FileEntry,
  ManifestNotFoundError,
  type PartitionEngine,
  partitionFromEnv,
  S3ExchangeStore,
  type ShardEntry,
  type ShardItem,
  shardInto,
  writeManifestParts,
} from 's3exchange'

/** What a worker reports on its last stdout line. */
interface WorkerReport {
  index: number
  count: number
  engine: PartitionEngine | 'none'
  /** Items read from its share, transformed and written. */
  items: number
  /** Parts it appended to the output root (0 or 1). */
  parts: number
  /** True when its part had already landed (a retry), so it did nothing. */
  skipped: boolean
}

const { values: flags } = parseArgs({
  options: {
    worker: { type: 'boolean' },
    workers: { type: 'string', default: '3' },
    engines: { type: 'string', default: 'kubernetes,aws-batch,slurm,torchrun,open-mpi,explicit' },
  },
})

// ------------------------------------------------------------------------------------ a worker

/** The record transformation: the text upper-cased, its words counted. */
function transform(record: { id: string; text: string }): string {
  return `${JSON.stringify({ id: record.id, text: record.text.toUpperCase(), words: record.text.split(/\s+/).length })}\n`
}

async function worker(): Promise<void> {
  const source = requiredEnv('SOURCE_MANIFEST')
  const outputRoot = requiredEnv('OUTPUT_ROOT')
  // This worker's share, from its engine's environment; the whole dataset outside any engine.
  const share = partitionFromEnv()
  const partition = share ?? { index: 0, count: 1 }
  const store = S3ExchangeStore.fromEnv({ envFile: false })
  const ctx = store.context()
  const report: WorkerReport = {
    index: partition.index,
    count: partition.count,
    engine: share?.engine ?? 'none',
    items: 0,
    parts: 0,
    skipped: false,
  }
  try {
    // Archive names are fixed by the share, so a retried worker rewrites its own archives, and
    // can tell whether its part already landed: then there is nothing left to do.
    const shardPrefix = `${outputRoot.replace(/\/[^/]*$/, '')}/shards/part-${partition.index}-of-${partition.count}`
    if (await alreadyPublished(store, outputRoot, shardPrefix)) {
      report.skipped = true
    } else {
      const result = await pipe(
        store.iterObjects(source, { partition, concurrency: 8 }),
        async function* toItems(items: AsyncIterable<EntryWithBody>): AsyncGenerator<ShardItem> {
          for await (const { entry, body } of items) {
            const record = JSON.parse(await body.text()) as { id: string; text: string }
            report.items++
            yield { source: Buffer.from(transform(record)), member_path: `${record.id}.json`, id: record.id, meta: { from: entry.key } }
          }
        },
        shardInto(ctx, { prefix: shardPrefix, maxEntries: 8, archiveName: (i) => `shard-${String(i).padStart(4, '0')}.tar.gz` }),
        writeManifestParts(ctx, outputRoot), // one part, then one conditional append to the root, retried on conflict
      )
      report.parts = result.parts.length
    }
  } finally {
    store.client.destroy()
  }
  process.stdout.write(`${JSON.stringify(report)}\n`)
}

/** True when the output root already lists a shard under this worker's prefix. */
async function alreadyPublished(store: S3ExchangeStore, root: string, shardPrefix: string): Promise<boolean> {
  try {
    for await (const entry of store.iterManifestEntries(root)) {
      if (entry.kind === 'shard' && entry.archive_key.startsWith(`${shardPrefix}/`)) return true
    }
  } catch (error) {
    if (error instanceof ManifestNotFoundError && error.key === root) return false
    throw error
  }
  return false
}

function requiredEnv(name: string): string {
  const value = process.env[name]
  if (!value) throw new Error(`set ${name}`)
  return value
}

// ------------------------------------------------------------------------------ the local run

/** Each engine's variables for worker `index` of `count`, as the engine sets them. */
const ENGINE_ENV: Record<PartitionEngine, (index: number, count: number) => Record<string, string>> = {
  // Kubernetes sets JOB_COMPLETION_INDEX; the Job spec sets JOB_COMPLETIONS (see the YAML).
  kubernetes: (index, count) => ({ JOB_COMPLETION_INDEX: String(index), JOB_COMPLETIONS: String(count) }),
  'aws-batch': (index, count) => ({
    AWS_BATCH_JOB_ARRAY_INDEX: String(index),
    AWS_BATCH_JOB_ARRAY_SIZE: String(count),
    AWS_BATCH_JOB_ID: 'local',
  }),
  // sbatch --array=1-<count>: task ids from 1
  slurm: (index, count) => ({
    SLURM_ARRAY_JOB_ID: '4242',
    SLURM_ARRAY_TASK_ID: String(index + 1),
    SLURM_ARRAY_TASK_COUNT: String(count),
    SLURM_ARRAY_TASK_MIN: '1',
    SLURM_ARRAY_TASK_MAX: String(count),
    SLURM_ARRAY_TASK_STEP: '1',
  }),
  torchrun: (index, count) => ({
    RANK: String(index),
    WORLD_SIZE: String(count),
    LOCAL_RANK: String(index),
    LOCAL_WORLD_SIZE: String(count),
  }),
  'open-mpi': (index, count) => ({
    OMPI_COMM_WORLD_RANK: String(index),
    OMPI_COMM_WORLD_SIZE: String(count),
    OMPI_COMM_WORLD_LOCAL_RANK: String(index),
  }),
  explicit: (index, count) => ({ S3X_PARTITION_INDEX: String(index), S3X_PARTITION_COUNT: String(count) }),
}

/** Every variable any engine sets: left out of the workers' environment but for their own engine's. */
const ENGINE_VARIABLES = new Set(Object.values(ENGINE_ENV).flatMap((env) => Object.keys(env(0, 1))))

async function localRun(workers: number, engines: PartitionEngine[]): Promise<void> {
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`--workers must be an integer ≥ 1, got ${flags.workers}`)
  for (const engine of engines) if (!(engine in ENGINE_ENV)) throw new Error(`--engines: unknown engine ${engine}`)
  // Only the local run needs a test server: a worker in a pod does not load @s3exchange/testing.
  const { startLocalS3, startS3Proxy } = await import('@s3exchange/testing')
  const s3 = await startLocalS3()
  const bucket = await s3.createBucket(s3.external ? undefined : 'partitioned-etl')
  const store = new S3ExchangeStore({ client: s3.client, bucket })
  const prefix = `examples/partitioned-etl/${randomBytes(4).toString('hex')}`
  // The embedded server ignores If-Match on writes: the workers go through a proxy that enforces it.
  const proxy = s3.external ? undefined : await startS3Proxy({ target: s3.endpoint, enforceConditionalWrites: true })
  const endpoint = proxy?.endpoint ?? s3.endpoint
  try {
    console.log(
      `S3: ${s3.external ? `external server at ${s3.endpoint}` : `embedded local S3, conditional writes enforced by a proxy at ${endpoint}`}, bucket ${bucket}`,
    )

    // --- The source dataset: records in tar.gz shards and loose objects, behind a root with a part.
    const sourceRoot = `${prefix}/source/manifest.jsonl`
    const records = Array.from({ length: 52 }, (_, i) => ({
      id: `rec-${String(i).padStart(3, '0')}`,
      text: `record ${i} says ${'hello world '.repeat(1 + (i % 5))}`.trim(),
    }))
    const shards: ShardEntry[] = []
    for (let s = 0; s < 4; s++) {
      const batch = records.slice(s * 10, s * 10 + 10)
      const items = batch.map((record) => ({
        source: Buffer.from(JSON.stringify(record)),
        member_path: `${record.id}.json`,
        id: record.id,
      }))
      shards.push((await store.putShardArchive(`${prefix}/source/shards/shard-${s}.tar.gz`, items)).entry)
    }
    const loose: FileEntry[] = []
    for (const record of records.slice(40)) {
      loose.push(await store.putObject(`${prefix}/source/loose/${record.id}.json`, Buffer.from(JSON.stringify(record)), { id: record.id }))
    }
    await store.writeManifest(sourceRoot, shards, { mode: 'overwrite' })
    await store.writeManifest(sourceRoot, loose, { mode: 'append_parts' })
    console.log(
      `source: ${sourceRoot}: ${records.length} records (${shards.length} tar.gz shards, ${loose.length} loose objects, one part)`,
    )
    const expected = new Map(records.map((record) => [record.id, transform(record)]))

    for (const engine of engines) {
      const outputRoot = `${prefix}/${engine}/manifest.jsonl`
      const env = (index: number): NodeJS.ProcessEnv => ({
        ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !ENGINE_VARIABLES.has(name))),
        ...ENGINE_ENV[engine](index, workers),
        S3_ENDPOINT_URL: endpoint,
        S3_REGION: s3.region,
        S3_AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId,
        S3_AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
        S3_BUCKET: bucket,
        SOURCE_MANIFEST: sourceRoot,
        OUTPUT_ROOT: outputRoot,
      })
      // All the workers at once: their appends to the one root race, and must all land.
      const conflictsBefore = proxy?.conflicts ?? 0
      const reports = await Promise.all(Array.from({ length: workers }, (_, index) => runWorker(env(index))))
      for (const [index, report] of reports.entries()) {
        if (report.engine !== engine || report.index !== index || report.count !== workers)
          throw new Error(`worker ${index} of ${engine} read its partition as ${JSON.stringify(report)}`)
      }

      // --- Every source record exactly once in the output, transformed.
      const refs = (await Array.fromAsync(store.iterManifestEntries(outputRoot, { resolveRefs: false }))).filter(
        (entry) => entry.kind === 'manifest_ref',
      )
      const parts = reports.reduce((sum, report) => sum + report.parts, 0)
      if (refs.length !== parts) throw new Error(`${engine}: the workers appended ${parts} parts, the root lists ${refs.length}`)
      const seen = new Map<string, number>()
      for await (const { entry, body } of store.iterObjects(outputRoot)) {
        const id = entry.id as string
        seen.set(id, (seen.get(id) ?? 0) + 1)
        if ((await body.text()) !== expected.get(id)) throw new Error(`${engine}: ${entry.key} does not hold the transformed record ${id}`)
      }
      const twice = [...seen].filter(([, n]) => n > 1).map(([id]) => id)
      const missing = [...expected.keys()].filter((id) => !seen.has(id))
      if (twice.length > 0 || missing.length > 0 || seen.size !== expected.size) {
        throw new Error(
          `${engine}: ${missing.length} records missing (${missing.slice(0, 3)}), ${twice.length} written twice (${twice.slice(0, 3)})`,
        )
      }

      // --- A retried worker (Kubernetes replaces a failed pod with one of the same index): nothing added.
      const before = await (await store.getObject(outputRoot)).text()
      const retry = await runWorker(env(0))
      const after = await (await store.getObject(outputRoot)).text()
      if (!retry.skipped || retry.parts !== 0 || after !== before) throw new Error(`${engine}: the retried worker 0 changed the output`)

      const shares = reports.map((report) => report.items).join(' + ')
      const races = proxy ? ` (${proxy.conflicts - conflictsBefore} append(s) lost a race and retried)` : ''
      const variables = Object.keys(ENGINE_ENV[engine](0, workers)).filter((name) => !/JOB_ID|LOCAL/.test(name))
      console.log(
        `${engine}: ${workers} workers (${variables.join(', ')}) read ${shares} = ${seen.size} records and appended ${refs.length} parts to one root${races}: ` +
          'every record exactly once; a retried worker added nothing',
      )
    }
    console.log('Done: each engine ran the same ETL, and the output root holds every record exactly once.')
  } finally {
    await store.deletePrefix(`${prefix}/`)
    await proxy?.stop()
    await s3.stop()
  }
}

/** Runs this file as a worker with `env`; resolves to its report. */
function runWorker(env: NodeJS.ProcessEnv): Promise<WorkerReport> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [import.meta.filename, '--worker'], { env, stdio: ['ignore', 'pipe', 'inherit'] })
    let stdout = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk
    })
    child.on('error', reject)
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`a worker exited with code ${code}`))
      else resolve(JSON.parse(stdout.trim().split('\n').at(-1) as string) as WorkerReport)
    })
  })
}

// (Last, so that every constant above is initialized.)
if (flags.worker) await worker()
else await localRun(Number(flags.workers), (flags.engines as string).split(',') as PartitionEngine[])
