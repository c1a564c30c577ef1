/**
 * Write benchmarks (issue 3): loose puts, items into tar.gz shards, a 1 GiB shard (peak RSS, in a
 * child process), a 1,000,000-entry manifest written and read back. Each beside the raw AWS SDK
 * doing the same job in the same run.
 */
import { createHash } from 'node:crypto'
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { buildTar } from '@s3exchange/testing'
import {
  type ManifestEntry,
  putObjects,
  readManifest,
  type S3Context,
  type ShardItem,
  serializeEntry,
  shardInto,
  writeManifestObject,
} from 's3exchange'
import { compare, fmt, inParallel, type Row, runChild } from './lib.ts'
import type { ChildResult } from './read.ts'

const COUNT = 2000
const SIZE = 4096
const MANIFEST_ENTRIES = 1_000_000

function payload(i: number): Buffer {
  const seed = createHash('sha256').update(`w${i}`).digest()
  const buf = Buffer.alloc(SIZE)
  for (let off = 0; off < SIZE; off += seed.length) seed.copy(buf, off)
  return buf
}

function manifestEntry(i: number): ManifestEntry {
  return {
    kind: 'file',
    key: `training/123/samples/${String(i).padStart(7, '0')}.wav`,
    id: String(i).padStart(7, '0'),
    meta: { sr: 16000, length: 15342 + (i % 1000) },
    content_type: 'audio/wav',
    size_bytes: 30684 + (i % 1000),
    etag: 'd41d8cd98f00b204e9800998ecf8427e',
  }
}

/** The write benchmarks; returns rows for RESULTS.md. */
export async function runWriteBenches(client: S3Client, endpoint: string, bucket: string, bigShard: boolean, runs: number): Promise<Row[]> {
  const ctx: S3Context = { client, bucket }
  const rows: Row[] = []
  const bodies = Array.from({ length: COUNT }, (_, i) => payload(i))
  let run = 0

  for (const concurrency of [8, 32]) {
    const t = await compare(runs, {
      ours: async () => {
        const prefix = `w/loose-${run++}`
        const items = bodies.map((data, i) => ({ key: `${prefix}/obj-${String(i).padStart(5, '0')}.bin`, data }))
        let n = 0
        for await (const _ of putObjects(ctx, { concurrency })(items)) n++
        if (n !== COUNT) throw new Error(`put ${n}`)
      },
      raw: async () => {
        const prefix = `w/raw-${run++}`
        await inParallel(
          bodies.map((data, i) => ({ data, i })),
          concurrency,
          ({ data, i }) =>
            client.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/obj-${String(i).padStart(5, '0')}.bin`, Body: data })),
        )
      },
    })
    const ours = COUNT / (t.ours as number)
    const raw = COUNT / (t.raw as number)
    rows.push({
      workload: `put 2,000 loose 4 KiB objects, concurrency ${concurrency} (entries returned, in order)`,
      ours: `${fmt.int(ours)} obj/s`,
      baseline: `raw PutObject ×${concurrency}: ${fmt.int(raw)} obj/s`,
      ratio: fmt.pct(ours / raw),
      python: `${fmt.ratio(ours / 410)} (Python: 410 obj/s, a PUT and a HEAD each)`,
      target: '≥ 85% of raw, ≥ 2.5× Python',
      met: ours / raw >= 0.85 && ours / 410 >= 2.5,
    })
  }

  const items = (): ShardItem[] =>
    bodies.map((source, i) => ({ source, member_path: `${String(i).padStart(5, '0')}.bin`, id: String(i), meta: { sr: 16000 } }))
  const ts = await compare(runs, {
    ours: async () => {
      let shards = 0
      for await (const _ of shardInto(ctx, { prefix: `w/shards-${run++}`, maxEntries: 500, compression: 'gzip' })(items())) shards++
      if (shards !== 4) throw new Error(`${shards} shards`)
    },
    raw: async () => {
      const prefix = `w/raw-shards-${run++}`
      for (let s = 0; s < 4; s++) {
        const members = bodies
          .slice(s * 500, (s + 1) * 500)
          .map((data, i) => ({ name: `${String(s * 500 + i).padStart(5, '0')}.bin`, data }))
        const archive = await buildTar(members, { gzip: true })
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/shard-${s}.tar.gz`, Body: archive }))
      }
    },
  })
  rows.push({
    workload: 'put the same 2,000 as 4 tar.gz shards (internal manifests, offsets, ETags)',
    ours: fmt.s(ts.ours as number),
    baseline: `tar-stream + gzip in memory + 4 raw PutObject: ${fmt.s(ts.raw as number)}`,
    ratio: fmt.pct((ts.raw as number) / (ts.ours as number)),
    python: `${fmt.ratio(0.41 / (ts.ours as number))} (Python: 0.41 s)`,
    target: '≥ 1.5× Python',
    met: 0.41 / (ts.ours as number) >= 1.5,
  })

  if (bigShard) {
    const ours = await runChild<ChildResult>('./write-shard-child.ts', ['ours', endpoint, bucket, 'w/big/shard.tar'])
    const raw = await runChild<ChildResult>('./write-shard-child.ts', ['raw', endpoint, bucket, 'w/big/raw.tar'])
    rows.push({
      workload: 'write a 1 GiB plain tar shard (1,024 × 1 MiB members)',
      ours: `${fmt.int(ours.mbPerSecond)} MB/s, peak RSS ${fmt.int(ours.peakRssMb)} MB`,
      baseline: `lib-storage Upload of 1 GiB streamed: ${fmt.int(raw.mbPerSecond)} MB/s, peak RSS ${fmt.int(raw.peakRssMb)} MB`,
      ratio: fmt.pct(ours.mbPerSecond / raw.mbPerSecond),
      python: 'Python: whole archive in memory or a temp file',
      target: 'peak RSS < 250 MB',
      met: ours.peakRssMb < 250,
    })
  }

  const manifestKey = 'w/million/manifest.jsonl'
  let written = 0
  let read = 0
  const writeSeconds = await compare(1, {
    ours: async () => {
      const result = await writeManifestObject(
        ctx,
        manifestKey,
        (function* () {
          for (let i = 0; i < MANIFEST_ENTRIES; i++) yield manifestEntry(i)
        })(),
      )
      written = result.entries
    },
    raw: async () => {
      const lines: string[] = []
      for (let i = 0; i < MANIFEST_ENTRIES; i++) lines.push(serializeEntry(manifestEntry(i)))
      await new Upload({
        client,
        params: { Bucket: bucket, Key: 'w/million/raw.jsonl', Body: `${lines.join('\n')}\n` },
        partSize: 8 * 1024 * 1024,
      }).done()
    },
  })
  const readSeconds = await compare(1, {
    ours: async () => {
      read = 0
      for await (const _ of readManifest(ctx, manifestKey)) read++
    },
    raw: async () => {
      const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'w/million/raw.jsonl' }))
      const text = (await response.Body?.transformToString()) ?? ''
      for (const line of text.split('\n')) if (line) JSON.parse(line)
    },
  })
  rows.push({
    workload: `write a 1,000,000-entry manifest (multipart, streamed), then read it back`,
    ours: `wrote ${fmt.int(written)} in ${fmt.s(writeSeconds.ours as number)}, read ${fmt.int(read)} in ${fmt.s(readSeconds.ours as number)}`,
    baseline: `whole string + lib-storage Upload: ${fmt.s(writeSeconds.raw as number)}; GET + split + JSON.parse: ${fmt.s(readSeconds.raw as number)}`,
    ratio: `write ${fmt.pct((writeSeconds.raw as number) / (writeSeconds.ours as number))}, read ${fmt.pct((readSeconds.raw as number) / (readSeconds.ours as number))}`,
    python: 'Python: fails on this server (one 18 MB PUT)',
    target: 'written and read back',
    met: written === MANIFEST_ENTRIES && read === MANIFEST_ENTRIES,
  })
  return rows
}
