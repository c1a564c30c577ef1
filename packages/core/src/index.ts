/**
 * @s3exchange/core: the wire format, key helpers, typed errors, and the streaming operators of
 * s3exchange. Operators are plain functions that return async generators (sources) or functions
 * from one async iterable to another (stages), so a pipeline composes with `pipe` from it-pipe.
 *
 * This is the public surface, listed name by name. The building blocks the operators are made of
 * (the multipart and tar writers, the tar reader, seekable gzip, archive indexes, …) are in
 * `@s3exchange/core/internals`: documented, used by the other packages of this repository, and
 * free to change between minor versions.
 */

// archive/: shard archives, read and written
export type { ArchiveIndexCache } from './archive/archive-index.js'
export { openEntryObject, openObject } from './archive/open-object.js'
export { type OpenMemberOptions, openArchiveMember, openShardMember } from './archive/random-access.js'
export {
  readArchiveMembers,
  readInternalEntries,
  readInternalManifest,
  readShardEntries,
  readShardMembers,
  type ShardReadOptions,
} from './archive/scan-archive.js'
export { type ShardItem, splitShardItems } from './archive/shard-items.js'
export { ShardWriter, type ShardWriterOptions } from './archive/shard-writer.js'
// format/: the wire format, keys, limits, errors, the writer protocol (no I/O)
export {
  DEFAULT_INTERNAL_MANIFEST_PATH,
  type FileEntry,
  internalManifestPath,
  type JsonValue,
  type LineLocation,
  type ManifestEntry,
  type ManifestRefEntry,
  type Meta,
  objectKeyOf,
  parseEntry,
  type ShardEntry,
  serializeEntry,
  shardCompression,
  validateEntry,
} from './format/entries.js'
export { type EntryStream, parseManifest } from './format/entry-stream.js'
export {
  BodyConsumedError,
  ConditionalWriteUnsupportedError,
  ConfigurationError,
  CursorMismatchError,
  DeleteRefusedError,
  IntegrityError,
  InvalidCursorError,
  InvalidEntryError,
  InvalidManifestError,
  InvalidSourceError,
  LimitExceededError,
  ManifestConflictError,
  ManifestNotFoundError,
  MissingPlaceholderError,
  ObjectChangedError,
  ObjectNotFoundError,
  PartialDeleteError,
  PublishError,
  S3ExchangeError,
  S3RequestError,
  ShardReadError,
  ShardWriteError,
  UnsafePathError,
  UnsupportedCompressionError,
} from './format/errors.js'
export {
  type CapabilityLearnedEvent,
  describeEvent,
  type EventLogger,
  type EventOptions,
  eventLevel,
  type FallbackEvent,
  logEvents,
  type OnEvent,
  type ReadResumedEvent,
  type S3ExchangeEvent,
  type WriteRetriedEvent,
} from './format/events.js'
export { isBlankLine, type SplitLinesOptions, splitLines } from './format/jsonl.js'
export {
  type ArchiveCompression,
  type ArchiveFormat,
  archiveCompressionFor,
  DEFAULT_SHARD_COMPRESSION,
  inferArchiveFormat,
  inferId,
  isArchiveKey,
  isManifestKey,
  isWithinFence,
  normalizeKey,
  partKeyFor,
  resolveTemplate,
  splitVirtualKey,
  type TemplateVars,
  type VirtualKey,
  virtualKey,
} from './format/keys.js'
export { DEFAULT_LIMITS, effectiveLimits, type ReadLimits } from './format/limits.js'
export { LruCache } from './format/lru-cache.js'
export { type EnvPartition, type EnvRecord, type PartitionEngine, partitionFromEnv } from './format/partition-env.js'
export { type OnProgress, type Progress, ProgressCounter, type ProgressOptions, type ProgressTotals } from './format/progress.js'
export type { RolloverLimits } from './format/rollover.js'
export {
  type BufferOutput,
  DEFAULT_SHUFFLE_BUFFER_SIZE,
  permute,
  type RandomSource,
  randomBelow,
  ShuffleBuffer,
  type ShuffleOptions,
  type ShuffleStream,
  shuffleRandom,
} from './format/shuffle-order.js'
export { type Writer, writeAll } from './format/writer.js'
// manifest/: publishing to a root
export { type AppendOptions, type AppendResult, appendToManifest } from './manifest/commit.js'
export type { WriteManifestObjectOptions, WrittenManifest } from './manifest/manifest-object.js'
export type { CommitResult, ManifestPartsOptions } from './manifest/parts-writer.js'
// operators/: the pipeline stages, sources and sinks
export { type CompactIntoOptions, type CompactReport, compactInto } from './operators/compact.js'
export { type ConnectionBudget, type ReadConnectionOptions, readConnections } from './operators/connections.js'
export {
  type EntryWithCursor,
  entriesWithCursor,
  type ObjectWithCursor,
  type PositionedEntriesOptions,
  positionedEntries,
  readPositionedMembers,
  withCursor,
} from './operators/cursors.js'
export {
  checkDeleteKey,
  checkDeletePrefix,
  type DeleteAllOptions,
  type DeletePlan,
  type DeleteReport,
  deleteAll,
  deletePlanned,
  matchingKeys,
  type PlanDeletionOptions,
  planDeletion,
} from './operators/delete.js'
export { type DownloadObjectOptions, downloadInto, downloadObject } from './operators/download.js'
export {
  type ExpandRefsOptions,
  expandRefs,
  type OpenManifest,
  type WalkedEntry,
  type WalkRefsOptions,
  walkRefs,
} from './operators/expand-refs.js'
export { DEFAULT_SHARD_CONCURRENCY, type ExpandShardsOptions, expandShards } from './operators/expand-shards.js'
export { DEFAULT_FETCH_CONCURRENCY, type FetchBodiesOptions, fetchBodies } from './operators/fetch-bodies.js'
export { type FetchKeysOptions, fetchKeys } from './operators/fetch-keys.js'
export { objectKeys, withKeyPrefix } from './operators/object-keys.js'
export { type PartitionOptions, partition } from './operators/partition.js'
export { type PutObjectItem, type PutObjectOptions, type PutObjectsOptions, putObject, putObjects } from './operators/put-objects.js'
export { type ManifestSource, type ReadManifestOptions, readManifest } from './operators/read-manifest.js'
export { type ProgressItem, reportProgress } from './operators/report-progress.js'
export { type ShardIntoOptions, shardInto } from './operators/shard-into.js'
export { type MixEntriesOptions, mixEntries, shuffleUnits } from './operators/shuffle.js'
export { type ShuffledEpochOptions, shuffledEpoch } from './operators/shuffled-epoch.js'
export { take } from './operators/take.js'
export { writeManifestObject } from './operators/write-manifest-object.js'
export { type WriteManifestPartsOptions, writeManifestParts } from './operators/write-manifest-parts.js'
// s3/: the context, requests, bodies, uploads
export { type EntryWithBody, hasBody, ObjectBody, type ObjectInfo, type PipelineItem, type VerifyOptions } from './s3/body.js'
export type { S3Context } from './s3/context.js'
export type { DataSource } from './s3/data-source.js'
export { clientConfigFor, createClient, type EnvSource, type S3Settings, settingsFromEnv } from './s3/env.js'
export { listKeys } from './s3/list-keys.js'
export type { UploadOptions, WrittenObject } from './s3/multipart-upload.js'
export { getObjectBody, type ObjectSourceOptions } from './s3/object-source.js'
export type { ProbeCheck } from './s3/probe-session.js'
export { DEFAULT_RANGE_CONCURRENCY, DEFAULT_RANGE_SIZE, type RangedReadOptions } from './s3/range-plan.js'
export { deleteObject, headObject, objectExists } from './s3/requests.js'
export {
  BEHAVIOUR_TOPICS,
  type ConditionalPutForm,
  type ConditionOutcome,
  formatSize,
  type LibraryBehaviour,
  libraryBehaviour,
  type ServerCapabilities,
} from './s3/server-capabilities.js'
export { rememberServerCapabilities, type WriteCapabilities } from './s3/server-knowledge.js'
export { type ProbeServerOptions, probeServer, probeServerOnce, type ServerProbe } from './s3/server-probe.js'
export {
  type ContextWriteOptions,
  type CustomerKey,
  checkWriteOptions,
  normalizeSseCustomerKey,
  type SseCustomerKey,
  type SseCustomerKeyOption,
  type WriteContext,
  type WriteOptions,
  withWriteOptions,
} from './s3/write-options.js'
