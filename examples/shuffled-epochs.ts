/**
 * A training loop over shuffled epochs, spread over workers: each worker reads
 * `iterObjects(manifest, { shuffle: { seed, epoch, bufferSize }, partition: partitionFromEnv(env) })`
 * once per epoch. The shards and loose files are permuted per (seed, epoch) before they are shared
 * out, so every worker computes the same split; each worker mixes its members through a bounded
 * buffer of entries and fetches their bodies after the mix.
 *
 * The workers here are torchrun-style environments (`RANK`, `WORLD_SIZE`) read in one process, to
 * keep the example short (examples/partitioned-loader.ts runs workers as processes). The example
 * checks that every epoch gives every sample exactly once across the workers, byte for byte, that
 * epochs differ in order, and that running an epoch again gives the same order.
 *
 * Runs against an embedded local S3 (fauxqs) by default, or against the server named by
 * S3_ENDPOINT_URL (with S3_AWS_ACCESS_KEY_ID, S3_AWS_SECRET_ACCESS_KEY, S3_REGION and S3_BUCKET).
 *
 *   node examples/shuffled-epochs.ts    (after npx pnpm@10 build)
 */
import { createHash, randomBytes } from 'node:crypto'
import { startLocalS3 } from '@s3exchange/testing'
import { type FileEntry, partitionFromEnv, S3ExchangeStore } from 's3exchange'

const WORKERS = 3
const EPOCHS = 3
const SEED = 'example-run'

const s3 = await startLocalS3()
const bucket = await s3.createBucket(s3.external ? undefined : 'shuffled-epochs')
const store = new S3ExchangeStore({ client: s3.client, bucket })
const prefix = `examples/shuffled-epochs/${randomBytes(4).toString('hex')}`
const manifestKey = `${prefix}/manifest.jsonl`
try {
  // --- A dataset: 60 samples in shards of 12 (tar.gz), and 8 loose files ------------------------
  const digests = new Map<string, string>()
  const writer = store.openManifestWriter(manifestKey, { mode: 'overwrite', shardSize: { maxEntries: 12 }, shardCompression: 'gzip' })
  for (let i = 0; i < 60; i++) {
    const data = randomBytes(200 + i * 10)
    const entry = await writer.addToShard(`${String(i).padStart(4, '0')}.bin`, data, { id: `sample-${i}` })
    digests.set(entry.key, sha256(data))
  }
  for (let i = 0; i < 8; i++) {
    const data = randomBytes(500)
    const entry = await writer.putObject(`${prefix}/loose/${i}.bin`, data)
    digests.set(entry.key, sha256(data))
  }
  await writer.close()
  console.log(`dataset: ${digests.size} samples (5 shards of 12 and 8 loose files)`)

  // --- The training loop: epochs, each worker its share ----------------------------------------
  const orders: string[] = []
  for (let epoch = 0; epoch < EPOCHS; epoch++) {
    const seen: string[] = []
    for (let rank = 0; rank < WORKERS; rank++) {
      // On a cluster, each worker calls partitionFromEnv() on its own process.env.
      const partition = partitionFromEnv({ RANK: String(rank), WORLD_SIZE: String(WORKERS) })
      const shuffle = { seed: SEED, epoch, bufferSize: 16 }
      for await (const { entry, body } of store.iterObjects(manifestKey, { shuffle, partition })) {
        const data = await body.bytes() // a training step would go here
        const key = (entry as FileEntry).key
        if (digests.get(key) !== sha256(data)) throw new Error(`epoch ${epoch}: ${key} came with the wrong bytes`)
        seen.push(key)
      }
    }
    if (new Set(seen).size !== seen.length || seen.length !== digests.size) {
      throw new Error(`epoch ${epoch}: ${seen.length} items, ${new Set(seen).size} distinct, of ${digests.size}`)
    }
    orders.push(seen.join('\n'))
    console.log(
      `epoch ${epoch}: ${seen.length} samples across ${WORKERS} workers, each exactly once; first: ${seen.slice(0, 3).map(short).join(', ')}`,
    )
  }
  if (new Set(orders).size !== EPOCHS) throw new Error('two epochs gave the same order')

  // --- The same epoch again: the same order (what resuming and reproducing rely on) ------------
  const again: string[] = []
  for (let rank = 0; rank < WORKERS; rank++) {
    const partition = partitionFromEnv({ RANK: String(rank), WORLD_SIZE: String(WORKERS) })
    for await (const { entry } of store.iterObjects(manifestKey, { shuffle: { seed: SEED, epoch: 1, bufferSize: 16 }, partition })) {
      again.push((entry as FileEntry).key)
    }
  }
  if (again.join('\n') !== orders[1]) throw new Error('epoch 1 read again gave another order')
  console.log(`every epoch in its own order; epoch 1 read again gave the same order`)
} finally {
  await store.deletePrefix(`${prefix}/`)
  await s3.stop()
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

/** The member path or file name, for the log. */
function short(key: string): string {
  return key.includes('#') ? key.slice(key.indexOf('#') + 1) : `loose/${key.slice(key.lastIndexOf('/') + 1)}`
}
