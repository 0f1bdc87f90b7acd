export { createSocketMonitor, SocketMonitor, type SocketReport } from './monitor.js';
export type { SocketMonitorOptions, StackMode } from './options.js';
export type { LeakGroup, SocketReportData } from './report.js';
export type {
  DestroyInfo,
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
