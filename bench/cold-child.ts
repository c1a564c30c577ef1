/**
 * One measurement in a fresh process, as a script or a batch job runs: the client is made, the
 * work done and the process ends. The timer starts after the imports, before the client is made
 * (its first connection counts); peak RSS is the whole process's.
 *
 *   node bench/cold-child.ts '{"workload":"loose","impl":"ours","endpoint":"http://127.0.0.1:1234","bucket":"bench",…}'
 *
 * Prints `{ seconds, items, bytes, peakRssMb }` as JSON on its last line. Workloads, each by this
 * library (`ours`) and by the raw AWS SDK (`raw`, at the same concurrency):
 *
 * - `loose`: iterate loose objects (`iterObjects` of `manifest`; raw: GetObject of `keys` at `concurrency`).
 * - `shards`: iterate tar.gz shards (`iterObjects`; raw: each archive's GET through gunzip and
 *   tar-stream, `concurrency` archives at once).
 * - `manifest`: read a manifest's entries (`iterManifestEntries`; raw: GET, whole text, split, JSON.parse).
 * - `put`: put `count` objects of 4 KiB (`putObjects`; raw: PutObject at `concurrency`).
 * - `shard`: iterate one big plain shard, every member's bytes (`iterObjects`; raw: one GET through
 *   tar-stream, or with `impl: 'ranged'` `concurrency` ranged GETs of `rangeMiB` at once, in order).
 * - `object`: read a big object (`getObject`; raw: one GET, or `ranged`).
 * - `download`: a big object to a local file (`downloadObject`; raw: one GET piped to the file).
 *
 * `concurrency` left out for `ours` means the library's default.
 */
import { createWriteStream } from 'node:fs'
import { rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGunzip } from 'node:zlib'
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { putObjects, S3ExchangeStore } from 's3exchange'
import { extract } from 'tar-stream'
import { smallObject } from './datasets.ts'
import { benchClient, inParallel, peakRssMb, time } from './lib.ts'

export interface ColdTask {
  workload: 'loose' | 'shards' | 'manifest' | 'put' | 'shard' | 'object' | 'download'
  impl: 'ours' | 'raw' | 'ranged'
  endpoint: string
  bucket: string
  /** The manifest (ours) or the object (raw, big objects). */
  key?: string
  /** Object keys the raw SDK reads (loose objects, archives). */
  keys?: string[]
  /** Requests (or archives) at once; left out for `ours`: the library's default. */
  concurrency?: number
  /** Objects to put, and the prefix of their keys. */
  count?: number
  prefix?: string
  /** Size of each ranged GET, in MiB. */
  rangeMiB?: number
}

export interface ColdResult {
  seconds: number
  /** Objects, members or entries handled. */
  items: number
  /** Body bytes read or written. */
  bytes: number
  peakRssMb: number
}

const MiB = 1024 * 1024

/** Reads a stream to its end, counting bytes. */
async function drain(stream: AsyncIterable<unknown>): Promise<number> {
  let bytes = 0
  for await (const chunk of stream) bytes += (chunk as Uint8Array).byteLength
  return bytes
}

/** Each member of a tar stream, read whole; resolves to [members, bytes]. */
async function readTar(stream: Readable, gzip: boolean): Promise<[number, number]> {
  const tar = extract()
  let members = 0
  let bytes = 0
  const reading = (async () => {
    for await (const entry of tar) {
      const chunks: Uint8Array[] = []
      for await (const chunk of entry) chunks.push(chunk as Uint8Array)
      bytes += Buffer.concat(chunks).byteLength
      members++
    }
  })()
  await Promise.all([gzip ? pipeline(stream, createGunzip(), tar) : pipeline(stream, tar), reading])
  return [members, bytes]
}

/** Body of a GetObject (a Node stream with the SDK's `transformTo…` methods). */
async function get(
  client: S3Client,
  bucket: string,
  key: string,
  range?: string,
): Promise<Readable & { transformToByteArray(): Promise<Uint8Array> }> {
  const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: range }))
  return response.Body as Readable & { transformToByteArray(): Promise<Uint8Array> }
}

/**
 * The object's bytes by `concurrency` ranged GETs of `rangeBytes` at once, yielded in order: what
 * a parallel ranged read can reach (each range is buffered whole; memory about their product).
 */
async function* rangedRead(
  client: S3Client,
  bucket: string,
  key: string,
  concurrency: number,
  rangeBytes: number,
): AsyncGenerator<Uint8Array> {
  const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))
  const size = head.ContentLength ?? 0
  const fetchRange = async (start: number) => {
    const end = Math.min(size, start + rangeBytes) - 1
    const body = await get(client, bucket, key, `bytes=${start}-${end}`)
    const chunks: Uint8Array[] = []
    for await (const chunk of body) chunks.push(chunk as Uint8Array)
    return Buffer.concat(chunks)
  }
  const window: Promise<Buffer>[] = []
  let next = 0
  while (next < size || window.length > 0) {
    while (next < size && window.length < concurrency) {
      window.push(fetchRange(next))
      next += rangeBytes
    }
    yield await (window.shift() as Promise<Buffer>)
  }
}

/** Where `download` writes (removed afterwards). */
const downloadPath = join(tmpdir(), `s3x-bench-${process.pid}.bin`)

async function run(task: ColdTask): Promise<ColdResult> {
  let items = 0
  let bytes = 0
  const seconds = await time(async () => {
    const client = benchClient(task.endpoint)
    const store = new S3ExchangeStore({ client, bucket: task.bucket })
    const concurrency = task.concurrency
    const key = task.key as string
    const ranged = () => Readable.from(rangedRead(client, task.bucket, key, concurrency ?? 8, (task.rangeMiB ?? 8) * MiB))
    switch (`${task.workload}/${task.impl}`) {
      case 'loose/ours':
      case 'shards/ours': {
        const options = task.workload === 'loose' ? { concurrency } : { shardConcurrency: concurrency }
        for await (const { body } of store.iterObjects(key, options)) {
          bytes += (await body.bytes()).byteLength
          items++
        }
        break
      }
      case 'loose/raw':
        await inParallel(task.keys ?? [], concurrency ?? 1, async (objectKey) => {
          bytes += (await (await get(client, task.bucket, objectKey)).transformToByteArray()).byteLength
          items++
        })
        break
      case 'shards/raw':
        await inParallel(task.keys ?? [], concurrency ?? 1, async (archive) => {
          const [members, read] = await readTar(await get(client, task.bucket, archive), true)
          items += members
          bytes += read
        })
        break
      case 'manifest/ours':
        for await (const _ of store.iterManifestEntries(key)) items++
        break
      case 'manifest/raw': {
        const text = await (await client.send(new GetObjectCommand({ Bucket: task.bucket, Key: key }))).Body?.transformToString()
        bytes = Buffer.byteLength(text ?? '')
        for (const line of (text ?? '').split('\n')) {
          if (!line) continue
          JSON.parse(line)
          items++
        }
        break
      }
      case 'put/ours':
      case 'put/raw': {
        const objects = Array.from({ length: task.count ?? 0 }, (_, i) => ({
          key: `${task.prefix}/obj-${String(i).padStart(6, '0')}.bin`,
          data: smallObject(),
        }))
        if (task.impl === 'ours') {
          for await (const _ of putObjects(store.context(), { concurrency })(objects)) items++
        } else {
          await inParallel(objects, concurrency ?? 1, async ({ key: objectKey, data }) => {
            await client.send(new PutObjectCommand({ Bucket: task.bucket, Key: objectKey, Body: data }))
            items++
          })
        }
        bytes = items * 4096
        break
      }
      case 'shard/ours':
        for await (const { body } of store.iterObjects(key)) {
          bytes += await drain(body)
          items++
        }
        break
      case 'shard/raw':
      case 'shard/ranged':
        ;[items, bytes] = await readTar(task.impl === 'raw' ? await get(client, task.bucket, key) : ranged(), false)
        break
      case 'object/ours':
        bytes = await drain(await store.getObject(key))
        items = 1
        break
      case 'object/raw':
        bytes = await drain(await get(client, task.bucket, key))
        items = 1
        break
      case 'object/ranged':
        bytes = await drain(ranged())
        items = 1
        break
      case 'download/ours':
        await store.downloadObject(key, downloadPath)
        bytes = (await stat(downloadPath)).size
        items = 1
        break
      case 'download/raw':
        await pipeline(await get(client, task.bucket, key), createWriteStream(downloadPath))
        bytes = (await stat(downloadPath)).size
        items = 1
        break
      default:
        throw new Error(`unknown workload ${task.workload}/${task.impl}`)
    }
    client.destroy()
  })
  return { seconds, items, bytes, peakRssMb: peakRssMb() }
}

const task = JSON.parse(process.argv[2] as string) as ColdTask
try {
  console.log(JSON.stringify(await run(task)))
} finally {
  await rm(downloadPath, { force: true })
}
