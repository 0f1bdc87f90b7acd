export type { AutoDestroyOptions } from './auto-destroy.js';
export { InvalidOptionError, KernelReadError } from './errors.js';
export {
  type HealthCheck,
  type HealthOptions,
  type HealthPayload,
  type HealthResponse,
  type HealthStatus,
  healthCheck,
  healthHandler,
} from './health.js';
export { createSocketMonitor, SocketMonitor, type SocketReport } from './monitor.js';
export type { PinoLikeLogger, SocketMonitorOptions, StackMode } from './options.js';
export type { LeakGroup, SocketReportData } from './report/report.js';
export type {
  DestroyInfo,
  KernelCheckResult,
  KernelSocket,
  KernelSummary,
  LeakKind,
  LeakResolution,
  RequestInfo,
  ServerInfo,
  SocketDetail,
  SocketDirection,
  SocketLeak,
  SocketMonitorEvents,
  TrackedSocket,
  TrackedSocketState,
} from './types.js';
