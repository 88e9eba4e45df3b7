import type { DaemonStatus, FullStatus } from '../ipc/control.js';

export function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)}K`;
  return `${(bytes / 1048576).toFixed(1)}M`;
}

/** `kobold is running (pid 1, up 5m 3s): web 2/2` */
export function statusLine(status: DaemonStatus): string {
  const services = status.services
    .map((s) => `${s.name} ${s.workers}/${s.target}${s.failing === null ? '' : ' FAILING'}`)
    .join(', ');
  return `kobold is ${status.state} (pid ${status.pid}, up ${formatDuration(status.uptimeMs)}): ${services}`;
}

export function fullStatusTable(status: FullStatus): string {
  const services = table(
    ['SERVICE', 'ROLE', 'WORKERS', 'MIN', 'MAX', 'RESTARTS', 'HEALTH'],
    status.services.map((s) => [s.name, s.role, `${s.workers}/${s.target}`, s.minWorkers, s.maxWorkers, s.restarts, s.failing === null ? 'ok' : `FAILING: ${s.failing}`]),
  );
  const workers = table(
    ['ID', 'PID', 'SERVICE', 'STATE', 'UPTIME', 'RSS', 'REQUESTS', 'CONNS', 'ELU', 'RESTARTS'],
    status.workers.map((w) => [
      w.id,
      w.pid,
      w.service,
      w.state === 'ready' ? (w.busy ? 'ready (busy)' : 'ready (idle)') : w.state,
      formatDuration(w.uptimeMs),
      formatBytes(w.rss),
      w.requests,
      w.connections,
      w.elu.toFixed(2),
      w.restarts,
    ]),
  );
  return `${statusLine(status)}\n\n${services}\n\n${workers}`;
}

function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((row) => row.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
  return cells.map((row) => row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}
