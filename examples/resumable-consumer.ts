/**
 * A consumer that survives crashes: it processes every object of a dataset exactly once, however
 * often it is killed, and a restart never starts again nor downloads again the archives it had
 * finished.
 *
 * The consumer keeps a journal: after processing an item it appends one line, `[key, sha256,
 * cursor]`, and fsyncs it. On start it takes the cursor of the journal's last line and passes it
 * to `iterObjects(manifest, { after: cursor })`, which resumes right after that item: the parts
 * and shards before it are not read, a shard it was in the middle of is read from the next
 * member on (one ranged GET). Recording the key and the cursor in one line makes "processed" and
 * "where to resume" one atomic fact.
 *
 * The parent (the default mode) starts an S3 server, publishes a dataset (loose files and tar,
 * tar.gz and tar.zst shards, in three parts), then runs the consumer as a child process and
 * kills it (SIGKILL) again and again at points of its journal, restarting it each time, until it
 * finishes; then it checks the journal holds every object exactly once, with the right bytes.
 *
 * Runs against an embedded local S3 (fauxqs) by default, or against the server named by
 * S3_ENDPOINT_URL (with S3_AWS_ACCESS_KEY_ID, S3_AWS_SECRET_ACCESS_KEY, S3_REGION, S3_BUCKET).
 *
 *   node examples/resumable-consumer.ts                                  (after npx pnpm@10 build)
 *   node examples/resumable-consumer.ts --consume <manifest> <journal> [delayMs] [options]   (one consumer, configured from S3_* variables)
 *
 * `options`, JSON: `shuffle` and `partition` for the read. A shuffled epoch resumes from its cursor
 * the same way (pass the same options each run): the rest of the same order, nothing twice.
 */
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { closeSync, existsSync, fsyncSync, mkdtempSync, openSync, readFileSync, rmSync, truncateSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { startLocalS3 } from '@s3exchange/testing'
import { type FileEntry, type IterObjectsOptions, type PutShardArchiveOptions, S3ExchangeStore } from 's3exchange'

/** What a consumer may be given besides its cursor. */
type ConsumerOptions = Pick<IterObjectsOptions, 'shuffle' | 'partition'>

if (process.argv[2] === '--consume') {
  const [manifest, journal, delayMs, options] = process.argv.slice(3) as [string, string, string | undefined, string | undefined]
  const read = (options === undefined ? {} : JSON.parse(options)) as ConsumerOptions
  await consume(S3ExchangeStore.fromEnv({ envFile: false }), manifest, journal, Number(delayMs ?? 0), read)
} else await parent()

// ---------------------------------------------------------------------------------- the consumer

/** Processes every object of `manifest` not yet in the journal, recording each as it is done. */
async function consume(
  store: S3ExchangeStore,
  manifest: string,
  journal: string,
  delayMs = 0,
  options: ConsumerOptions = {},
): Promise<void> {
  const after = lastCursor(journal)
  const fd = openSync(journal, 'a')
  try {
    for await (const { entry, body, cursor } of store.iterObjects(manifest, { ...options, after })) {
      const bytes = await body.bytes()
      const sha256 = createHash('sha256').update(bytes).digest('hex') // the real work would go here
      if (delayMs > 0) await sleep(delayMs)
      writeSync(fd, `${JSON.stringify([(entry as FileEntry).key, sha256, cursor])}\n`)
      fsyncSync(fd)
    }
  } finally {
    closeSync(fd)
  }
}

/** The cursor of the journal's last complete line (a line cut by a crash is dropped), or undefined. */
function lastCursor(journal: string): string | undefined {
  if (!existsSync(journal)) return undefined
  const text = readFileSync(journal, 'utf8')
  const end = text.lastIndexOf('\n') + 1
  if (end < text.length) truncateSync(journal, Buffer.byteLength(text.slice(0, end)))
  const lines = text.slice(0, end).split('\n').filter(Boolean)
  const last = lines.at(-1)
  return last === undefined ? undefined : (JSON.parse(last) as [string, string, string])[2]
}

// ------------------------------------------------------------------------------------ the parent

async function parent(): Promise<void> {
  const s3 = await startLocalS3()
  const bucket = await s3.createBucket(s3.external ? undefined : 'resumable-consumer')
  const store = new S3ExchangeStore({ client: s3.client, bucket })
  const dir = mkdtempSync(join(tmpdir(), 'resumable-consumer-'))
  try {
    const manifest = `resumable/${randomBytes(4).toString('hex')}/manifest.jsonl`
    const expected = await publish(store, manifest)
    console.log(`published ${expected.size} objects behind ${manifest}`)

    const journal = join(dir, 'journal.jsonl')
    const env = {
      ...process.env,
      S3_ENDPOINT_URL: s3.endpoint,
      S3_REGION: s3.region,
      S3_AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId,
      S3_AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
      S3_BUCKET: bucket,
    }
    let runs = 0
    for (const killAt of [3, 7, 12, 19, 26, 33, Number.POSITIVE_INFINITY]) {
      runs++
      const code = await runConsumer(manifest, journal, env, killAt)
      console.log(`run ${runs}: ${code === 0 ? 'finished' : 'killed'} with ${journalLines(journal)} objects in the journal`)
      if (code === 0) break
    }
    const keys = readFileSync(journal, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as [string, string, string])
    const once = new Set(keys.map(([key]) => key))
    const right = keys.every(([key, sha256]) => expected.get(key) === sha256)
    if (once.size !== keys.length || keys.length !== expected.size || !right) {
      throw new Error(`the journal has ${keys.length} lines for ${once.size} keys of ${expected.size}; bytes right: ${right}`)
    }
    console.log(`Done: ${expected.size} objects processed exactly once across ${runs} runs, each killed with SIGKILL but the last.`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
    await s3.stop()
  }
}

/** Publishes loose files and shards in three parts; resolves to each object's key and sha256. */
async function publish(store: S3ExchangeStore, manifest: string): Promise<Map<string, string>> {
  const expected = new Map<string, string>()
  const base = manifest.slice(0, manifest.lastIndexOf('/'))
  const loose = async (name: string) => {
    const bytes = randomBytes(4096)
    const entry = await store.putObject(`${base}/objects/${name}`, bytes)
    expected.set(entry.key, createHash('sha256').update(bytes).digest('hex'))
    return entry
  }
  const shard = async (name: string, compression: PutShardArchiveOptions['compression']) => {
    const archiveKey = `${base}/shards/${name}`
    const items = Array.from({ length: 8 }, (_, i) => {
      const source = randomBytes(12_000)
      expected.set(`${archiveKey}#${i}.bin`, createHash('sha256').update(source).digest('hex'))
      return { source, member_path: `${i}.bin`, id: `${name}-${i}` }
    })
    return (await store.putShardArchive(archiveKey, items, { compression })).entry
  }
  const parts = [
    [await loose('a'), await loose('b'), await loose('c'), await loose('d'), await shard('s1.tar', null)],
    [await loose('e'), await loose('f'), await loose('g'), await shard('s2.tar.gz', 'gzip'), await shard('s3.tar.zst', 'zstd')],
    [await loose('h'), await loose('i'), await loose('j'), await shard('s4.tar', null)],
  ]
  for (const entries of parts) await store.writeManifest(manifest, entries, { mode: 'append_parts' })
  return expected
}

/** Runs one consumer; kills it once the journal has `killAt` lines. Resolves to its exit code (null when killed). */
async function runConsumer(
  manifest: string,
  journal: string,
  env: NodeJS.ProcessEnv,
  killAt: number,
  delayMs = 15,
): Promise<number | null> {
  const child = spawn(process.execPath, [import.meta.filename, '--consume', manifest, journal, String(delayMs)], {
    env,
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject)
    child.on('exit', (code) => resolve(code))
  })
  let done = false
  void exited.then(() => {
    done = true
  })
  while (!done) {
    if (journalLines(journal) >= killAt) child.kill('SIGKILL')
    await sleep(5)
  }
  return exited
}

function journalLines(journal: string): number {
  if (!existsSync(journal)) return 0
  return readFileSync(journal, 'utf8').split('\n').filter(Boolean).length
}
