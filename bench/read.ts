/**
 * Read benchmarks (issue 2): loose objects, tar.gz shards, big plain tar shards (throughput and
 * peak RSS, in child processes), manifest parsing. Each beside the raw AWS SDK doing the same job
 * in the same run.
 */
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { buildTar, internalManifestFor } from '@s3exchange/testing'
import { type FileEntry, parseManifest, readManifest, S3ExchangeStore, type ShardEntry, serializeEntry } from 's3exchange'
import { pack } from 'tar-stream'
import { compare, fmt, inParallel, type Row, runChild } from './lib.ts'

const LOOSE_COUNT = 2000
const LOOSE_SIZE = 4096
const SHARD_COUNT = 4
const MANIFEST_ENTRIES = 50_000
const MiB = 1024 * 1024

export const keys = {
  looseManifest: 'loose/manifest.jsonl',
  shardManifest: 'shards/manifest.jsonl',
  bigManifest: (members: number) => `big/${members}/manifest.jsonl`,
  bigArchive: (members: number) => `big/${members}/shard.tar`,
  parseManifest: 'parse/manifest.jsonl',
}

function payload(i: number, size: number): Buffer {
  const seed = createHash('sha256').update(String(i)).digest()
  const buf = Buffer.alloc(size)
  for (let off = 0; off < size; off += seed.length) seed.copy(buf, off)
  return buf
}

async function putManifest(client: S3Client, bucket: string, key: string, entries: object[]): Promise<void> {
  const body = entries.map((e) => `${serializeEntry(e as FileEntry)}\n`).join('')
  await new Upload({ client, params: { Bucket: bucket, Key: key, Body: body, ContentType: 'application/x-ndjson' } }).done()
}

/** Writes the datasets the read benches read. */
export async function prepareReadData(client: S3Client, bucket: string, bigShardMembers: number[]): Promise<void> {
  const looseKeys = Array.from({ length: LOOSE_COUNT }, (_, i) => `loose/obj-${String(i).padStart(5, '0')}.bin`)
  await inParallel(looseKeys, 32, (key) =>
    client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: payload(looseKeys.indexOf(key), LOOSE_SIZE) })),
  )
  await putManifest(
    client,
    bucket,
    keys.looseManifest,
    looseKeys.map((key) => ({ kind: 'file', key, size_bytes: LOOSE_SIZE })),
  )

  const shardEntries: ShardEntry[] = []
  const perShard = LOOSE_COUNT / SHARD_COUNT
  for (let s = 0; s < SHARD_COUNT; s++) {
    const archiveKey = `shards/shard-${String(s).padStart(5, '0')}.tar.gz`
    const members = Array.from({ length: perShard }, (_, i) => ({
      name: `${String(s * perShard + i).padStart(5, '0')}.bin`,
      data: payload(i, LOOSE_SIZE),
    }))
    const archive = await buildTar([{ name: '__manifest__.jsonl', data: internalManifestFor(archiveKey, members) }, ...members], {
      gzip: true,
    })
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: archiveKey, Body: archive }))
    shardEntries.push({
      kind: 'shard',
      archive_key: archiveKey,
      format: 'tar',
      compression: 'gzip',
      count: perShard,
      size_bytes: archive.byteLength,
    })
  }
  await putManifest(client, bucket, keys.shardManifest, shardEntries)

  for (const count of bigShardMembers) await putBigShard(client, bucket, count)

  const entries = Array.from({ length: MANIFEST_ENTRIES }, (_, i) => ({
    kind: 'file',
    key: `training/123/samples/${String(i).padStart(6, '0')}.wav`,
    id: String(i).padStart(6, '0'),
    meta: { sr: 16000, length: 15342 + i, lang: 'en' },
    content_type: 'audio/wav',
    size_bytes: 30684 + i,
    etag: createHash('md5').update(String(i)).digest('hex'),
  }))
  await putManifest(client, bucket, keys.parseManifest, entries)
}

/** A plain tar of `count` members of 1 MiB, its internal manifest first, streamed into a multipart upload. */
export async function putBigShard(client: S3Client, bucket: string, count: number): Promise<void> {
  const archiveKey = keys.bigArchive(count)
  const names = Array.from({ length: count }, (_, i) => `${String(i).padStart(5, '0')}.bin`)
  const manifest = names
    .map(
      (name) =>
        `${serializeEntry({ kind: 'file', key: `${archiveKey}#${name}`, member_path: name, id: name, meta: null, size_bytes: MiB })}\n`,
    )
    .join('')
  const archive = pack()
  const upload = new Upload({
    client,
    params: { Bucket: bucket, Key: archiveKey, Body: Readable.from(archive) },
    partSize: 8 * MiB,
    queueSize: 2,
  })
  const uploaded = upload.done()
  const block = payload(count, MiB)
  const add = (name: string, data: Buffer) =>
    new Promise<void>((resolve, reject) => archive.entry({ name, size: data.byteLength }, data, (e) => (e ? reject(e) : resolve())))
  await add('__manifest__.jsonl', Buffer.from(manifest))
  for (const name of names) await add(name, block)
  archive.finalize()
  await uploaded
  const size = 512 + Math.ceil(manifest.length / 512) * 512 + count * (512 + MiB) + 1024
  await putManifest(client, bucket, keys.bigManifest(count), [
    { kind: 'shard', archive_key: archiveKey, format: 'tar', compression: null, count, size_bytes: size },
  ])
}

async function rawGetAll(client: S3Client, bucket: string, keyList: string[], concurrency: number): Promise<number> {
  let bytes = 0
  await inParallel(keyList, concurrency, async (key) => {
    const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
    bytes += (await response.Body?.transformToByteArray())?.byteLength ?? 0
  })
  return bytes
}

async function oursIterate(store: S3ExchangeStore, manifest: string, concurrency?: number): Promise<number> {
  let count = 0
  for await (const { body } of store.iterObjects(manifest, { concurrency })) {
    await body.bytes()
    count++
  }
  return count
}

/** The read benchmarks; returns rows for RESULTS.md. */
export async function runReadBenches(
  client: S3Client,
  endpoint: string,
  bucket: string,
  bigShardMembers: number[],
  runs: number,
): Promise<Row[]> {
  const store = new S3ExchangeStore({ client, bucket })
  const rows: Row[] = []
  const looseKeys = Array.from({ length: LOOSE_COUNT }, (_, i) => `loose/obj-${String(i).padStart(5, '0')}.bin`)

  for (const concurrency of [8, 32]) {
    const t = await compare(runs, {
      ours: () => oursIterate(store, keys.looseManifest, concurrency),
      raw: () => rawGetAll(client, bucket, looseKeys, concurrency),
    })
    const ours = LOOSE_COUNT / (t.ours as number)
    const raw = LOOSE_COUNT / (t.raw as number)
    const python = 960
    rows.push({
      workload: `iterate 2,000 loose 4 KiB objects, concurrency ${concurrency}`,
      ours: `${fmt.int(ours)} obj/s`,
      baseline: `raw GetObject ×${concurrency}: ${fmt.int(raw)} obj/s`,
      ratio: fmt.pct(ours / raw),
      python: `${fmt.ratio(ours / python)} (Python: 890–960 obj/s)`,
      target: '≥ 90% of raw, ≥ 1.5× Python',
      met: ours / raw >= 0.9 && ours / python >= 1.5,
    })
  }

  const shardKeys = Array.from({ length: SHARD_COUNT }, (_, s) => `shards/shard-${String(s).padStart(5, '0')}.tar.gz`)
  const ts = await compare(runs, {
    ours: () => oursIterate(store, keys.shardManifest),
    raw: () => rawGetAll(client, bucket, shardKeys, 1),
  })
  const shardRate = LOOSE_COUNT / (ts.ours as number)
  rows.push({
    workload: 'iterate the same 2,000 in 4 tar.gz shards',
    ours: `${fmt.int(shardRate)} obj/s`,
    baseline: `raw GET of the 4 archives' bytes (no gunzip, no tar): ${fmt.int(LOOSE_COUNT / (ts.raw as number))} obj/s`,
    ratio: fmt.pct((ts.raw as number) / (ts.ours as number)),
    python: `${fmt.ratio(shardRate / 13_500)} (Python: 10,500–13,500 obj/s)`,
    target: '≥ 1.5× Python',
    met: shardRate / 13_500 >= 1.5,
  })

  const big: Record<number, { ours: ChildResult; raw: ChildResult }> = {}
  for (const count of bigShardMembers) {
    const oursRuns: ChildResult[] = []
    const rawRuns: ChildResult[] = []
    for (let run = 0; run < runs; run++) {
      oursRuns.push(await runChild<ChildResult>('./read-shard-child.ts', ['ours', endpoint, bucket, keys.bigManifest(count)]))
      rawRuns.push(await runChild<ChildResult>('./read-shard-child.ts', ['raw', endpoint, bucket, keys.bigArchive(count)]))
    }
    const pick = (results: ChildResult[]) => results.sort((a, b) => a.seconds - b.seconds)[Math.floor(results.length / 2)] as ChildResult
    big[count] = { ours: pick(oursRuns), raw: pick(rawRuns) }
    const { ours, raw } = big[count]
    const mb = count
    rows.push({
      workload: `iterate a ${count === 1024 ? '1 GiB' : `${count} MiB`} plain tar shard (${count} × 1 MiB)`,
      ours: `${fmt.int(ours.mbPerSecond)} MB/s, peak RSS ${fmt.int(Math.max(...oursRuns.map((r) => r.peakRssMb)))} MB`,
      baseline: `one raw GET streamed: ${fmt.int(raw.mbPerSecond)} MB/s, peak RSS ${fmt.int(raw.peakRssMb)} MB`,
      ratio: fmt.pct(ours.mbPerSecond / raw.mbPerSecond),
      python:
        count === 256
          ? `Python: 1.17 s (${fmt.int(mb / 1.17)} MiB/s), peak RSS 309 MB; ours ${fmt.s(ours.seconds)}`
          : 'Python: RSS grows with the shard',
      target: count === 1024 ? 'peak RSS < 200 MB' : '',
      met: count === 1024 ? ours.peakRssMb < 200 : true,
    })
  }
  if (big[256] && big[1024]) {
    const small = big[256].ours.peakRssMb
    const large = big[1024].ours.peakRssMb
    rows.push({
      workload: 'peak RSS, 1 GiB shard vs 256 MiB shard',
      ours: `${fmt.int(large)} MB vs ${fmt.int(small)} MB`,
      baseline: '',
      ratio: fmt.pct(large / small),
      python: 'Python grows with the shard',
      target: 'within 20% (flat)',
      met: large / small <= 1.2,
    })
  }

  const manifestBytes = Buffer.from(
    (await (await client.send(new GetObjectCommand({ Bucket: bucket, Key: keys.parseManifest }))).Body?.transformToByteArray()) ?? [],
  )
  const chunks: Buffer[] = []
  for (let offset = 0; offset < manifestBytes.byteLength; offset += 64 * 1024)
    chunks.push(manifestBytes.subarray(offset, offset + 64 * 1024))
  let parsed = 0
  const tm = await compare(runs, {
    ours: async () => {
      parsed = 0
      for await (const _ of parseManifest(chunks, { key: keys.parseManifest })) parsed++
    },
    raw: async () => {
      for (const line of manifestBytes.toString('utf8').split('\n')) if (line) JSON.parse(line)
    },
  })
  const parseRate = parsed / (tm.ours as number)
  rows.push({
    workload: `parse a 50,000-entry manifest (${(manifestBytes.byteLength / 1e6).toFixed(1)} MB, bytes in memory in 64 KiB chunks)`,
    ours: `${fmt.int(parseRate)} entries/s`,
    baseline: `whole text, split + JSON.parse: ${fmt.int(MANIFEST_ENTRIES / (tm.raw as number))} entries/s`,
    ratio: fmt.pct((tm.raw as number) / (tm.ours as number)),
    python: `${fmt.ratio(parseRate / 390_000)} (Python: 390,000 entries/s)`,
    target: '≥ 1,000,000 entries/s',
    met: parseRate >= 1_000_000,
  })

  const tp = await compare(runs, {
    ours: async () => {
      for await (const _ of readManifest(store.context(), keys.parseManifest)) parsed++
    },
    raw: async () => {
      const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: keys.parseManifest }))
      const text = (await response.Body?.transformToString()) ?? ''
      for (const line of text.split('\n')) if (line) JSON.parse(line)
    },
  })
  rows.push({
    workload: 'read the same manifest from S3 (GET included; ours streams, the baseline buffers the whole object)',
    ours: `${fmt.int(MANIFEST_ENTRIES / (tp.ours as number))} entries/s`,
    baseline: `raw GET, whole text, split + JSON.parse: ${fmt.int(MANIFEST_ENTRIES / (tp.raw as number))} entries/s`,
    ratio: fmt.pct((tp.raw as number) / (tp.ours as number)),
    python: '',
    target: '',
    met: true,
  })
  return rows
}

export interface ChildResult {
  seconds: number
  bytes: number
  members: number
  mbPerSecond: number
  peakRssMb: number
}
