/**
 * Write options: what a company bucket asks of every PUT. A store that writes everything with
 * SSE-KMS (an S3 Bucket Key), a storage class, tags and metadata, with per-call overrides; then a
 * store that encrypts with a key of your own (SSE-C), which every read of those objects must
 * send: the store does it, for whole reads, member reads by range and HEADs alike. Each part
 * prints what the server reports back (HEAD); a server that refuses an option (Ceph RGW refuses
 * encryption over plain HTTP; a bucket without that storage class) is reported, not hidden.
 *
 * Runs against an embedded local S3 (fauxqs, in this process: it accepts these options and keeps
 * only the metadata) by default, or against the server named by S3_ENDPOINT_URL (with
 * S3_AWS_ACCESS_KEY_ID, S3_AWS_SECRET_ACCESS_KEY, S3_REGION and S3_BUCKET). KMS_KEY_ID names the
 * KMS key (default: the bucket's default, `aws/s3` on AWS); STORAGE_CLASS the storage class
 * (default STANDARD_IA).
 *
 *   node examples/write-options.ts    (after npx pnpm@10 build)
 */
import { randomBytes } from 'node:crypto'
import { startLocalS3 } from '@s3exchange/testing'
import { type FileEntry, S3ExchangeStore, S3RequestError } from 's3exchange'

const s3 = await startLocalS3()
try {
  const bucket = await s3.createBucket(s3.external ? undefined : 'write-options')
  const run = `write-options-${Date.now().toString(36)}`

  // --- 1. SSE-KMS, a storage class, tags and metadata for every write of the store.
  const store = new S3ExchangeStore({
    client: s3.client,
    bucket,
    writeOptions: {
      serverSideEncryption: 'aws:kms',
      ...(process.env.KMS_KEY_ID ? { sseKmsKeyId: process.env.KMS_KEY_ID } : {}),
      bucketKeyEnabled: true,
      storageClass: process.env.STORAGE_CLASS ?? 'STANDARD_IA',
      tagging: { team: 'asr', retention: '90d' },
      metadata: { pipeline: 'ingest' },
    },
  })
  try {
    // Per call: this object's metadata replaces the store's (the rest stays).
    const clip = await store.putObject(`${run}/kms/clips/0001.wav`, randomBytes(3200), { metadata: { 'sample-rate': '16000' } })
    const shard = await store.putShardArchive(
      `${run}/kms/shards/shard-00000.tar`, // .tar: a plain tar (the extension decides)
      Array.from({ length: 3 }, (_, i) => ({ source: randomBytes(1000), member_path: `speaker-1/${i}.wav`, id: String(i) })),
    )
    await store.writeManifest(`${run}/kms/manifest.jsonl`, [clip, shard.entry], { mode: 'append_parts' })
    for (const key of [clip.key, shard.archiveKey, `${run}/kms/manifest.jsonl`]) {
      const head = await store.getObjectMetadata(key)
      console.log(
        `SSE-KMS store wrote ${key}: encryption ${head.ServerSideEncryption ?? '(not reported)'}, ` +
          `storage class ${head.StorageClass ?? '(not reported)'}, metadata ${JSON.stringify(head.Metadata)}`,
      )
    }
  } catch (error) {
    if (!(error instanceof S3RequestError)) throw error
    console.log(`this server refused a write option: ${error.message}`)
  }

  // --- 2. SSE-C: a key of yours. S3 keeps no copy: lose it and the objects are lost.
  const sealed = new S3ExchangeStore({ client: s3.client, bucket, sseCustomerKey: { key: randomBytes(32) } })
  try {
    const objects: FileEntry[] = []
    for (let i = 0; i < 3; i++) objects.push(await sealed.putObject(`${run}/sse-c/clip-${i}.txt`, Buffer.from(`secret clip ${i}`)))
    const shard = await sealed.putShardArchive(`${run}/sse-c/shards/shard-00000.tar.gz`, [
      { source: Buffer.from('secret member'), member_path: 'm.txt' },
    ])
    await sealed.writeManifest(`${run}/sse-c/manifest.jsonl`, [...objects, shard.entry])
    // Every read of this store sends the key: the manifest, the loose objects, the archive.
    let read = 0
    for await (const { body } of sealed.iterObjects(`${run}/sse-c/manifest.jsonl`)) read += (await body.bytes()).byteLength
    const member = await sealed.getObject(`${shard.archiveKey}#m.txt`) // one ranged GET, with the key
    console.log(`SSE-C store read back ${read} bytes; one member by range: "${await member.text()}"`)
    // Without the key, a server that enforces SSE-C refuses (fauxqs ignores SSE-C and answers).
    const keyless = new S3ExchangeStore({ client: s3.client, bucket })
    const refused = await keyless.getObjectMetadata(objects[0]?.key as string).then(
      () => false,
      () => true,
    )
    console.log(`read without the key: ${refused ? 'refused by the server' : 'answered (this server does not enforce SSE-C)'}`)
  } catch (error) {
    if (!(error instanceof S3RequestError)) throw error
    console.log(`this server refused SSE-C: ${error.message}`)
  }
} finally {
  await s3.stop()
}
