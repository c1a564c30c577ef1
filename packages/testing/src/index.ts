export { type BuildTarOptions, buildTar, foreignShardArchive, internalManifestFor, type TarMemberSpec } from './archives.js'
export { rejection } from './assertions.js'
export { largestBurst, type PacedSlice } from './bandwidth.js'
export {
  clientFor,
  connectS3,
  deleteBucket,
  ensureBucket,
  externalS3FromEnv,
  type LocalS3,
  randomBucketName,
  type S3Connection,
  type StartLocalS3Options,
  startLocalS3,
} from './local-s3.js'
export { type MultipartUpload, pendingMultipartUploads, trackMultipartUploads } from './multipart.js'
export type {
  ProxiedRequest,
  ProxyAction,
  ProxyAnswer,
  ProxyConnection,
  ProxyFault,
  RecordedRequest,
  S3Proxy,
  S3ProxyOptions,
} from './proxy-types.js'
export { type InjectedFaults, mulberry32, type RandomFaults, type RandomFaultsOptions, randomFaults } from './random-faults.js'
export { type RetryQuicklyOptions, retryQuickly } from './retry-quickly.js'
export { countRequests, type RequestCounts, uploadDirectory } from './s3-helpers.js'
export { startS3Proxy } from './s3-proxy.js'
export { type PooledClient, type PooledClientOptions, pooledClient } from './socket-pool.js'
export { type RequireToolOptions, requireTool } from './system-tools.js'
export {
  describeServer,
  MEASURED_CAPABILITIES,
  SERVER_FEATURES,
  type ServerFeature,
  serverSupports,
  type TestServerInfo,
} from './test-server.js'
export {
  customerKeyHeaders,
  type EncryptionSupport,
  expectedOptionHeaders,
  optionHeaders,
  type ProbeWriteOptionsOptions,
  probeWriteOptions,
  requestKey,
  type S3Operation,
  s3Operation,
  type WriteOptionSupport,
  type WriteOptionsSent,
} from './write-options-support.js'
