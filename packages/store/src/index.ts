/**
 * s3exchange: exchange datasets through S3 with JSONL manifests and tar shard archives,
 * byte-compatible with Python s3exchange 0.1.x. One import serves: the store, `Manifest`,
 * `Shard`, the entry types, the typed errors, and the core operators for your own pipelines.
 */

export * from '@s3exchange/core'
export type { CompactOptions, CompactReport } from './compact.js'
export type { DeleteManifestOptions, DeletePrefixOptions, DeleteReport, FenceOptions } from './delete.js'
export type { DownloadOptions } from './download.js'
export { clientConfigFor, type EnvSource, type S3Settings, settingsFromEnv } from './env.js'
export {
  type CallOptions,
  type GetKeysOptions,
  type IterEntriesOptions,
  type IterObjectsOptions,
  type ListFilesOptions,
  Manifest,
  type ManifestRef,
} from './manifest.js'
export {
  type AddFileOptions,
  type AddToShardOptions,
  ManifestWriter,
  type ManifestWriterOptions,
  type ManifestWriterStats,
  type ShardSizePolicy,
  type WriterPutObjectOptions,
} from './manifest-writer.js'
export { ScopedStore } from './scoped-store.js'
export { Shard, type ShardIterOptions } from './shard.js'
export {
  type FromEnvOptions,
  type IterObjectsFromKeysOptions,
  type PutObjectOptions,
  type PutShardArchiveOptions,
  type PutShardedOptions,
  S3ExchangeStore,
  type S3ExchangeStoreOptions,
  type WriteManifestOptions,
  type WriteManifestResult,
} from './store.js'
