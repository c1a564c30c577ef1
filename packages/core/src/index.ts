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
  LruCache,
  openLocatedMember,
  readArchiveHead,
} from './archive-index.js'
export { type BodySourceOptions, type ByteSource, type Expectation, expectationOf, ObjectBody, type ObjectInfo } from './body.js'
export { type DeleteKeysOptions, type DeleteKeysResult, deleteKeys, isWithinFence } from './delete.js'
export { safeLocalPath, type WriteFileOptions, writeFileAtomically } from './download.js'
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
} from './entries.js'
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
  UnsupportedCompressionError,
} from './errors.js'
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
} from './gzip-stitch.js'
export { DEFAULT_MAX_LINE_BYTES, isBlankLine, type SplitLinesOptions, splitLines } from './jsonl.js'
export {
  type ArchiveFormat,
  inferArchiveFormat,
  inferId,
  isArchiveKey,
  isManifestKey,
  normalizeKey,
  resolveTemplate,
  splitVirtualKey,
  type TemplateVars,
  type VirtualKey,
  virtualKey,
} from './keys.js'
export { DEFAULT_LIMITS, effectiveLimits, type ReadLimits } from './limits.js'
export {
  type AppendOptions,
  type AppendResult,
  appendToManifest,
  isConflict,
  MANIFEST_CONTENT_TYPE,
  partKeyFor,
} from './manifest-commit.js'
export { ManifestObjectWriter, type WriteManifestObjectOptions, type WrittenManifest, writeManifestObject } from './manifest-object.js'
export { type CommitResult, type ManifestPartsOptions, ManifestPartsWriter } from './manifest-parts-writer.js'
export {
  collectSource,
  DEFAULT_RESUME_ATTEMPTS,
  type ObjectSourceOptions,
  openObjectSource,
  ResumableSource,
  requestObject,
} from './object-source.js'
export {
  DEFAULT_PART_SIZE,
  DEFAULT_QUEUE_SIZE,
  ObjectWriter,
  type ObjectWriterOptions,
  putBytes,
  type WrittenObject,
} from './object-writer.js'
export { openEntryObject, openObject } from './objects.js'
export { type ExpandRefsOptions, expandRefs } from './operators/expand-refs.js'
export { type ExpandShardsOptions, expandShards, hasBody, type PipelineItem } from './operators/expand-shards.js'
export {
  DEFAULT_FETCH_CONCURRENCY,
  DEFAULT_MAX_BUFFERED_BYTES,
  type FetchBodiesOptions,
  fetchBodies,
} from './operators/fetch-bodies.js'
export { type PartitionOptions, partition } from './operators/partition.js'
export { type PrefetchShardsOptions, prefetchShards } from './operators/prefetch-shards.js'
export {
  EntryStream,
  MANIFEST_KEY,
  type ManifestSource,
  parseManifest,
  type ReadManifestOptions,
  readManifest,
} from './operators/read-manifest.js'
export { runId, type ShardIntoOptions, shardInto } from './operators/shard-into.js'
export { take } from './operators/take.js'
export { type WriteManifestPartsOptions, writeManifestParts } from './operators/write-manifest-parts.js'
export { type PutObjectItem, type PutObjectOptions, type PutObjectsOptions, putObject, putObjects } from './put-object.js'
export { type GetObjectBodyOptions, getObjectBody, headObject, mapS3Error, objectBodyFrom, type S3Context, unquoteEtag } from './s3.js'
export {
  type EntryWithBody,
  listedMemberEntry,
  type OpenMemberOptions,
  openArchiveMember,
  parseInternalManifest,
  readInternalManifest,
  readShardEntries,
  readShardMembers,
  type ScanArchiveOptions,
  type ScannedMember,
  type ShardReadOptions,
  scanArchive,
  streamedMemberEntry,
} from './shard-reader.js'
export {
  memberPathProblem,
  type PreparedShardItem,
  prepareShardItem,
  type ShardItem,
  ShardWriter,
  type ShardWriterOptions,
} from './shard-writer.js'
export { type DataSource, DEFAULT_MAX_UNSIZED_BYTES, type PreparedSource, type PrepareSourceOptions, prepareSource } from './sources.js'
export {
  isRegularFile,
  type ReadTarOptions,
  readTarMembers,
  type SniffedCompression,
  sniffCompression,
  type TarEntryStream,
  type TarMember,
} from './tar-reader.js'
export { paddedSize, TAR_END, type TarHeaderSpec, tarHeader, tarHeaderSize, tarPadding } from './tar-writer.js'
