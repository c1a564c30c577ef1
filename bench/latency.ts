/**
 * The latency table (issue 15): loose objects and tar.gz shards read through the test proxy with a
 * fixed time to first byte on every request (20 ms and 50 ms, as a real S3 answers), at several
 * concurrencies, by this library and by the raw AWS SDK at the same concurrency, each run a fresh
 * process. It shows which concurrency keeps enough requests in flight, to pick the defaults.
 */
import { startS3Proxy } from '@s3exchange/testing'
import { DEFAULT_FETCH_CONCURRENCY } from 's3exchange'
import { boto3Child, coldChild, expectItems, interleaved, itemsPerSecond } from './cold.ts'
import { type BenchTarget, DEFAULT_SHARD_CONCURRENCY, PYTHON } from './context.ts'
import { datasetKeys, prepareLoose, prepareShards, type Sizes } from './datasets.ts'
import { fmt, type Row } from './lib.ts'

export const LATENCIES_MS = [20, 50]
const CONCURRENCIES = [8, 16, 32, 64]
/** Objects boto3 reads one at a time through the latency, to anchor Python's figure (its rate does not depend on how many). */
const BOTO3_OBJECTS = 200

/** `values` and `extra`, sorted, each once. */
const withDefault = (values: number[], extra: number) => [...new Set([...values, extra])].sort((a, b) => a - b)

/** The latency benchmarks; returns the rows for RESULTS.md. */
export async function runLatencyBenches(target: BenchTarget, sizes: Sizes, runs: number, log: (line: string) => void): Promise<Row[]> {
  const { client, bucket } = target
  const rows: Row[] = []
  log('  preparing loose objects and shards…')
  const looseManifest = await prepareLoose(client, bucket, sizes.latencyLooseCount)
  const loosePrefix = datasetKeys.loose(sizes.latencyLooseCount).prefix
  const looseKeys = Array.from({ length: sizes.latencyLooseCount }, (_, i) => datasetKeys.looseKey(loosePrefix, i))
  const { count: shardCount, members } = sizes.latencyShards
  const shardsManifest = await prepareShards(client, bucket, shardCount, members)
  const archives = datasetKeys.shards(shardCount, members).archives

  for (const latencyMs of LATENCIES_MS) {
    const proxy = await startS3Proxy({ target: target.endpoint, latencyMs, recordRequests: false })
    try {
      for (const concurrency of withDefault(CONCURRENCIES, DEFAULT_FETCH_CONCURRENCY)) {
        log(`  ${latencyMs} ms, loose objects, concurrency ${concurrency}…`)
        const isDefault = concurrency === DEFAULT_FETCH_CONCURRENCY
        const results = await interleaved(runs, {
          ours: () => coldChild(target, { workload: 'loose', impl: 'ours', key: looseManifest, concurrency }, proxy.endpoint),
          raw: () => coldChild(target, { workload: 'loose', impl: 'raw', keys: looseKeys, concurrency }, proxy.endpoint),
          ...(isDefault && {
            boto3: () => boto3Child(target, { workload: 'loose', keys: looseKeys.slice(0, BOTO3_OBJECTS) }, proxy.endpoint),
          }),
        })
        expectItems('loose through latency', { ours: results.ours ?? [], raw: results.raw ?? [] }, sizes.latencyLooseCount)
        const ours = itemsPerSecond(results.ours ?? [])
        const raw = itemsPerSecond(results.raw ?? [])
        const boto3 =
          results.boto3 && `; boto3 one at a time (${BOTO3_OBJECTS} objects): ${fmt.spread(itemsPerSecond(results.boto3), 'obj/s')}`
        const python = latencyMs === 20 ? ours.median / PYTHON.loose20ms.high : undefined
        const checksPython = isDefault && python !== undefined
        rows.push({
          workload: `iterate ${fmt.int(sizes.latencyLooseCount)} loose 4 KiB objects, ${latencyMs} ms, concurrency ${concurrency}${isDefault ? ' (default)' : ''}`,
          ours: fmt.spread(ours, 'obj/s'),
          baseline: `raw GetObject ×${concurrency}: ${fmt.spread(raw, 'obj/s')}${boto3 ?? ''}`,
          ratio: `${fmt.pct(ours.median / raw.median)} of raw`,
          python: python === undefined ? '' : `${PYTHON.loose20ms.text} → ${fmt.ratio(python)}`,
          target: checksPython ? '≥ 20× Python, ≥ 90% of raw' : '≥ 90% of raw',
          met: ours.median / raw.median >= 0.9 && (!checksPython || (python as number) >= 20),
        })
      }
      const shardConcurrencies = withDefault(CONCURRENCIES, DEFAULT_SHARD_CONCURRENCY).filter((c) => c <= shardCount)
      for (const concurrency of shardConcurrencies) {
        log(`  ${latencyMs} ms, shards, ${concurrency} at once…`)
        const results = await interleaved(runs, {
          ours: () => coldChild(target, { workload: 'shards', impl: 'ours', key: shardsManifest, concurrency }, proxy.endpoint),
          raw: () => coldChild(target, { workload: 'shards', impl: 'raw', keys: archives, concurrency }, proxy.endpoint),
        })
        expectItems('shards through latency', { ours: results.ours ?? [] }, shardCount * members)
        const ours = itemsPerSecond(results.ours ?? [])
        const raw = itemsPerSecond((results.raw ?? []).map((r) => ({ ...r, items: r.items - shardCount })))
        const isDefault = concurrency === DEFAULT_SHARD_CONCURRENCY
        rows.push({
          workload: `iterate ${shardCount} tar.gz shards × ${members} × 4 KiB, ${latencyMs} ms, ${concurrency} archives at once${isDefault ? ' (default)' : ''}`,
          ours: fmt.spread(ours, 'obj/s'),
          baseline: `raw: ${concurrency} archives at once, each one GET → gunzip → tar-stream: ${fmt.spread(raw, 'obj/s')}`,
          ratio: `${fmt.pct(ours.median / raw.median)} of raw`,
          python: 'Python: one archive at a time',
          target: 'none in issue 15 (to pick the default)',
          met: undefined,
        })
      }
    } finally {
      await proxy.stop()
    }
  }
  return rows
}
