/**
 * What the cold-process, latency and bandwidth tables share: the server they run against, the
 * library defaults the raw baselines match, and the Python s3exchange 0.1.1 reference figures.
 */
import type { S3Client } from '@aws-sdk/client-s3'

/** The bench server (fauxqs in a process of its own), a client for it and the bucket. */
export interface BenchTarget {
  client: S3Client
  endpoint: string
  bucket: string
}

/**
 * The library's defaults that the raw baselines match, where the library exports no constant
 * (`DEFAULT_FETCH_CONCURRENCY` and `DEFAULT_SHARD_CONCURRENCY` are imported from it): `concurrency`
 * of `putObjects`. Keep it in step with packages/core/src/operators/put-objects.ts.
 */
export { DEFAULT_SHARD_CONCURRENCY } from 's3exchange'
export const DEFAULT_PUT_CONCURRENCY = 16

/**
 * Python s3exchange 0.1.1 with boto3, each in a fresh process, same local S3 (fauxqs), 2 cores:
 * the figures of issue 15 (and of DESIGN.md for the 256 MiB shard's time). Reference figures,
 * measured by the filer on this machine type, not in this run. Ratios use the best (highest)
 * Python figure.
 */
export const PYTHON = {
  loose: { high: 822, text: 'Python¹: 668–822 obj/s' },
  shards: { high: 10_900, text: 'Python¹: 8,500–10,900 obj/s' },
  manifest: { high: 287_000, text: 'Python¹: 270,000–287,000 entries/s' },
  put: { high: 385, text: 'Python¹: 385 obj/s' },
  shard256: { text: 'Python¹: 1.17 s (229 MB/s), peak RSS 309 MB' },
  /** Loose objects through 20 ms to the first byte (one at a time). */
  loose20ms: { high: 42, text: 'Python¹: 42 obj/s' },
}

/** The footnote that every table quoting {@link PYTHON} carries. */
export const PYTHON_FOOTNOTE =
  '¹ Python s3exchange 0.1.1 with boto3: reference figures from issue 15, measured by the filer on this machine type (2 cores, fauxqs on loopback, fresh processes), not in this run; Python s3exchange is not installable here. Ratios are to the best Python figure. The boto3 figures beside the raw SDK are measured in this run (fresh `python3` processes, one request at a time as Python s3exchange does) to anchor them.'
