/**
 * A consumer killed at random points resumes from its saved cursor: `examples/resumable-consumer.ts
 * --consume` runs as a child process (against the built packages, through a request-logging
 * proxy) and is killed with SIGKILL at seeded random points of its journal, many times, then
 * restarted with the journal's last cursor, until it finishes. At the end every object was
 * processed exactly once, with its bytes, in manifest order; and no archive was read whole again
 * once a run had begun it: a run that starts inside a shard reads it with ranged GETs only, and a
 * run never reads an archive whole twice.
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { decodeCursor, type ShuffledCursorPosition } from '@s3exchange/core/internals'
import { mulberry32 } from '@s3exchange/testing'
import { useS3Proxy, useTestS3 } from '@s3exchange/testing/vitest'
import { type FileEntry, type PutShardArchiveOptions, S3ExchangeStore } from 's3exchange'
import { afterAll, beforeAll, expect, it } from 'vitest'

const s3 = useTestS3()
const via = useS3Proxy(s3)
const example = join(import.meta.dirname, '..', 'examples', 'resumable-consumer.ts')
const dir = mkdtempSync(join(tmpdir(), 'resume-after-kill-'))
let manifest: string
/** The objects in manifest order, with the archive each is a member of. */
const order: { key: string; archive: string | undefined }[] = []
const archives: string[] = []

beforeAll(async () => {
  const store = new S3ExchangeStore({ client: s3.client, bucket: s3.bucket })
  manifest = s3.key('ds/manifest.jsonl')
  const loose = (name: string) => store.putObject(s3.key(`objects/${name}`), Buffer.alloc(2048, name))
  const shard = async (name: string, compression: PutShardArchiveOptions['compression'], members: number) => {
    const archiveKey = s3.key(`shards/${name}`)
    archives.push(archiveKey)
    const items = Array.from({ length: members }, (_, i) => ({ source: Buffer.alloc(12_000, `${name}${i}`), member_path: `${i}.bin` }))
    return (await store.putShardArchive(archiveKey, items, { compression })).entry
  }
  await store.writeManifest(manifest, [await loose('a'), await loose('b'), await shard('s1.tar', null, 10), await loose('c')], {
    mode: 'append_parts',
  })
  await store.writeManifest(manifest, [await shard('s2.tar.gz', 'gzip', 10), await loose('d'), await shard('s3.tar.zst', 'zstd', 10)], {
    mode: 'append_parts',
  })
  await store.writeManifest(manifest, [await loose('e'), await shard('s4.tar', null, 10), await loose('f')], { mode: 'append_parts' })
  for await (const { entry } of store.iterObjects(manifest)) {
    order.push({ key: (entry as FileEntry).key, archive: (entry as FileEntry).archive_key })
  }
})

afterAll(() => rmSync(dir, { recursive: true, force: true }))

function journalKeys(journal: string): string[] {
  if (!existsSync(journal)) return []
  const text = readFileSync(journal, 'utf8')
  // Only complete lines: the consumer may be writing the last one while this reads (or was killed
  // halfway through it, and drops it when it starts again).
  return text
    .slice(0, text.lastIndexOf('\n') + 1)
    .split('\n')
    .filter(Boolean)
    .map((line) => (JSON.parse(line) as [string])[0])
}

/** Runs the consumer (with `options`, JSON, for its read) until it exits, or kills it once the journal has `killAt` lines. */
async function run(journal: string, killAt: number, options?: string): Promise<number | null> {
  const child = spawn(process.execPath, [example, '--consume', manifest, journal, '10', ...(options === undefined ? [] : [options])], {
    env: {
      ...process.env,
      S3_ENDPOINT_URL: via.proxy.endpoint,
      S3_REGION: s3.s3.region,
      S3_AWS_ACCESS_KEY_ID: s3.s3.credentials.accessKeyId,
      S3_AWS_SECRET_ACCESS_KEY: s3.s3.credentials.secretAccessKey,
      S3_BUCKET: s3.bucket,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk
  })
  let exit: { code: number | null } | undefined
  const exited = new Promise<void>((resolve, reject) => {
    child.on('error', reject)
    child.on('exit', (code) => {
      exit = { code }
      resolve()
    })
  })
  while (exit === undefined) {
    if (journalKeys(journal).length >= killAt) child.kill('SIGKILL')
    await Promise.race([exited, sleep(3)])
  }
  if (exit.code !== null && exit.code !== 0) throw new Error(`the consumer failed (exit ${exit.code}):\n${stderr}`)
  return exit.code
}

it('a consumer killed at random points many times processes every object exactly once and never reads an archive whole twice', async () => {
  const journal = join(dir, 'journal.jsonl')
  const random = mulberry32(20261204)
  const path = (url: string) => decodeURIComponent(url.split('?')[0] as string)
  const runs: { startedWith: string[]; requests: typeof via.proxy.requests }[] = []
  let kills = 0
  for (;;) {
    const startedWith = journalKeys(journal)
    // Kill after 1 to 4 more objects, most times; let the run finish once 12 kills are done.
    const killAt = kills < 12 ? startedWith.length + 1 + Math.floor(random() * 4) : Number.POSITIVE_INFINITY
    const mark = via.proxy.requests.length
    const code = await run(journal, killAt)
    runs.push({ startedWith, requests: via.proxy.requests.slice(mark) })
    if (code === 0) break
    kills++
  }
  expect(kills).toBe(12)

  // Every object exactly once, in manifest order.
  expect(journalKeys(journal)).toStrictEqual(order.map((o) => o.key))

  let startedInsideShard = 0
  for (const { startedWith, requests } of runs) {
    const done = new Set(startedWith)
    const wholeGets = (archive: string) =>
      requests.filter((r) => r.method === 'GET' && path(r.url).endsWith(`/${archive}`) && r.headers.range === undefined)
    for (const archive of archives) {
      const members = order.filter((o) => o.archive === archive).map((o) => o.key)
      const begun = members.some((key) => done.has(key))
      // A run never reads an archive whole twice, and never one that an earlier run had begun.
      expect(wholeGets(archive).length, `${archive} read whole in one run`).toBeLessThanOrEqual(begun ? 0 : 1)
      if (begun && !members.every((key) => done.has(key))) {
        startedInsideShard++
        const ranged = requests.filter((r) => r.method === 'GET' && path(r.url).endsWith(`/${archive}`) && r.headers.range !== undefined)
        expect(ranged.length, `${archive} resumed by ranged GETs`).toBeGreaterThan(0)
      }
    }
  }
  expect(startedInsideShard).toBeGreaterThan(0)
})

it('a shuffled, partitioned epoch killed at random points: the same order as an uninterrupted run, each object once, no archive read whole, the wholly handed over not opened', async () => {
  const store = new S3ExchangeStore({ client: s3.client, bucket: s3.bucket })
  const options = { shuffle: { seed: 'kill', epoch: 3, bufferSize: 4 }, partition: { index: 1, count: 2 } }
  const expected: string[] = []
  for await (const { entry } of store.iterObjects(manifest, options)) expected.push((entry as FileEntry).key)
  expect(expected.length).toBeGreaterThan(10)
  // The worker's units in order (loose files and shards), to tell which a resumed run may open.
  const units = (
    await Array.fromAsync(store.iterManifestEntries(manifest, { ...options, shuffle: { ...options.shuffle, bufferSize: 1 } }))
  ).map((entry) => (entry.kind === 'shard' ? entry.archive_key : (entry as FileEntry).key))
  const journal = join(dir, 'shuffled-journal.jsonl')
  const random = mulberry32(20261205)
  const path = (url: string) => decodeURIComponent(url.split('?')[0] as string)
  let kills = 0
  let resumedLate = 0
  for (;;) {
    const lines = existsSync(journal) ? readFileSync(journal, 'utf8').split('\n').filter(Boolean) : []
    const startedWith = lines.length
    const cursor = lines.length === 0 ? undefined : (JSON.parse(lines.at(-1) as string) as [string, string, string])[2]
    const killAt = kills < 8 ? startedWith + 1 + Math.floor(random() * 4) : Number.POSITIVE_INFINITY
    const mark = via.proxy.requests.length
    const code = await run(journal, killAt, JSON.stringify(options))
    const gets = via.proxy.requests.slice(mark).filter((r) => r.method === 'GET')
    // No archive is streamed whole: its head, then one ranged GET per member.
    for (const archive of archives) {
      const whole = gets.filter((r) => path(r.url).endsWith(`/${archive}`) && r.headers.range === undefined)
      expect(whole, `${archive} read whole`).toHaveLength(0)
    }
    if (cursor !== undefined) {
      // Units before the cursor's first pending one are not opened.
      const low = (decodeCursor(cursor) as ShuffledCursorPosition).low.unit
      const opened = new Set(gets.map((r) => path(r.url)))
      expect(opened.has(`/${s3.bucket}/${manifest}`)).toBe(true) // the form of the paths checked below
      for (const unit of units.slice(0, low)) expect(opened.has(`/${s3.bucket}/${unit}`), `${unit} opened again`).toBe(false)
      if (low > 0) resumedLate++
    }
    if (code === 0) break
    kills++
  }
  expect(kills).toBe(8)
  expect(journalKeys(journal)).toStrictEqual(expected)
  expect(resumedLate).toBeGreaterThan(0)
})
