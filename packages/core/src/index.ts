/**
 * @s3exchange/core: the wire format, key helpers, typed errors, and the streaming operators of
 * s3exchange. Operators are plain functions that return async generators (sources) or functions
 * from one async iterable to another (stages), so a pipeline composes with `pipe` from it-pipe.
 */

export {
  type ArchiveHead,
  type ArchiveIndex,
  type ArchiveIndexCache,
  type ArchiveIndexOptions,
  isLocated,
  readArchiveHead,
} from './archive/archive-index.js'
export {
  BodyDeflater,
  crc32,
  crc32Combine,
  deflateHead,
  deflatePadding,
  gzipHead,
  gzipHeader,
  gzipTrailer,
  type Segment,
  SegmentDeflater,
} from './archive/gzip-stitch.js'
export { HeadLastWriter } from './archive/head-last-writer.js'
export { listedMemberEntry, parseInternalManifest, streamedMemberEntry } from './archive/internal-manifest.js'
export { openEntryObject, openObject } from './archive/open-object.js'
export { type OpenMemberOptions, openArchiveMember, openLocatedMember } from './archive/random-access.js'
export {
  readInternalManifest,
  readShardEntries,
  readShardMembers,
  type ScanArchiveOptions,
  type ScannedMember,
  type ShardReadOptions,
  scanArchive,
} from './archive/scan-archive.js'
export { type PreparedShardItem, prepareShardItem, type ShardItem, splitShardItems } from './archive/shard-items.js'
export { ShardWriter, type ShardWriterOptions } from './archive/shard-writer.js'
export {
  isRegularFile,
  type ReadTarOptions,
  readTarMembers,
  type SniffedCompression,
  sniffCompression,
  type TarEntryStream,
  type TarMember,
} from './archive/tar-reader.js'
export { paddedSize, TAR_END, type TarHeaderSpec, tarHeader, tarHeaderSize, tarPadding } from './archive/tar-writer.js'
export {
  DEFAULT_INTERNAL_MANIFEST_PATH,
  ENTRY_KINDS,
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
export { EntryStream, parseManifest } from './format/entry-stream.js'
export {
  ConfigurationError,
  DeleteRefusedError,
  httpStatusOf,
  IntegrityError,
  InvalidManifestError,
  InvalidSourceError,
  isAbort,
  isNotFound,
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
} from './format/errors.js'
export { DEFAULT_MAX_LINE_BYTES, isBlankLine, type SplitLinesOptions, splitLines } from './format/jsonl.js'
export {
  type ArchiveFormat,
  inferArchiveFormat,
  inferId,
  isArchiveKey,
  isManifestKey,
  isWithinFence,
  memberPathProblem,
  normalizeKey,
  partKeyFor,
  resolveTemplate,
  runId,
  shardArchiveName,
  splitVirtualKey,
  type TemplateVars,
  type VirtualKey,
  virtualKey,
} from './format/keys.js'
export { DEFAULT_LIMITS, effectiveLimits, type ReadLimits } from './format/limits.js'
export { LruCache } from './format/lru-cache.js'
export { type BatchSize, closesBefore, isFull, type RolloverLimits } from './format/rollover.js'
export { type Writer, writeAll } from './format/writer.js'
export { type AppendOptions, type AppendResult, appendToManifest, isConflict, MANIFEST_CONTENT_TYPE } from './manifest/commit.js'
export { ManifestObjectWriter, type WriteManifestObjectOptions, type WrittenManifest } from './manifest/manifest-object.js'
export { type CommitResult, type ManifestPartsOptions, ManifestPartsWriter } from './manifest/parts-writer.js'
export { safeLocalPath, type WriteFileOptions, writeFileAtomically } from './operators/download.js'
export { type ExpandRefsOptions, expandRefs } from './operators/expand-refs.js'
export { type ExpandShardsOptions, expandShards } from './operators/expand-shards.js'
export {
  DEFAULT_FETCH_CONCURRENCY,
  DEFAULT_MAX_BUFFERED_BYTES,
  type FetchBodiesOptions,
  fetchBodies,
} from './operators/fetch-bodies.js'
export { type PartitionOptions, partition } from './operators/partition.js'
export { type PrefetchShardsOptions, prefetchShards } from './operators/prefetch-shards.js'
export { type PutObjectItem, type PutObjectOptions, type PutObjectsOptions, putObject, putObjects } from './operators/put-objects.js'
export { MANIFEST_KEY, type ManifestSource, type ReadManifestOptions, readManifest } from './operators/read-manifest.js'
export { type ShardIntoOptions, shardInto } from './operators/shard-into.js'
export { take } from './operators/take.js'
export { writeManifestObject } from './operators/write-manifest-object.js'
export { type WriteManifestPartsOptions, writeManifestParts } from './operators/write-manifest-parts.js'
export {
  type BodySourceOptions,
  type ByteSource,
  type EntryWithBody,
  type Expectation,
  expectationOf,
  hasBody,
  ObjectBody,
  type ObjectInfo,
  type PipelineItem,
} from './s3/body.js'
export type { S3Context } from './s3/context.js'
export {
  type DataSource,
  DEFAULT_MAX_UNSIZED_BYTES,
  type PreparedSource,
  type PrepareSourceOptions,
  prepareSource,
} from './s3/data-source.js'
export { type DeleteKeysOptions, type DeleteKeysResult, deleteKeys } from './s3/delete-keys.js'
export { DEFAULT_PART_SIZE, DEFAULT_QUEUE_SIZE, type UploadOptions, type WrittenObject } from './s3/multipart-upload.js'
export {
  collectSource,
  DEFAULT_RESUME_ATTEMPTS,
  getObjectBody,
  type ObjectSourceOptions,
  objectBodyFrom,
  openObjectSource,
  ResumableSource,
} from './s3/object-source.js'
export { ObjectWriter, putBytes } from './s3/object-writer.js'
export { headObject, mapS3Error, requestObject, unquoteEtag } from './s3/requests.js'
