/**
 * Readings from Linux /proc for the load tool: CPU time of a process and of the machine, a
 * process's resident memory (settled), and open-file limits. Every reader returns null where
 * /proc is missing or the process is gone, so the tool runs (without these figures) elsewhere.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const CLOCK_TICKS = 100;

export function round3(x) {
  return Math.round(x * 1000) / 1000;
}

/** CPU seconds (user + system, all threads) of a process from /proc, or null. */
export function procCpuSeconds(pid) {
  if (!pid) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

/** Busy CPU seconds of the whole machine (all cores, everything but idle and iowait), or null. */
export function machineBusySeconds() {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

/**
 * Marks CPU counters; `end()` gives cores used over the span by the tool, the broker, the whole
 * machine, and everything else ('other': other processes on the machine, which make a run
 * unreliable when high).
 */
export function cpuSpan(brokerPid) {
  const tool = process.cpuUsage();
  const broker = procCpuSeconds(brokerPid);
  const machine = machineBusySeconds();
  const t = performance.now();
  return () => {
    const seconds = Math.max(1e-3, (performance.now() - t) / 1000);
    const used = process.cpuUsage(tool);
    const brokerEnd = procCpuSeconds(brokerPid);
    const machineEnd = machineBusySeconds();
    const cores = {
      tool: round3((used.user + used.system) / 1e6 / seconds),
      broker: broker === null || brokerEnd === null ? null : round3((brokerEnd - broker) / seconds),
      machine: machine === null || machineEnd === null ? null : round3((machineEnd - machine) / seconds),
      other: null,
    };
    if (cores.broker !== null && cores.machine !== null) {
      cores.other = round3(Math.max(0, cores.machine - cores.tool - cores.broker));
    }
    return cores;
  };
}

/** Resident memory (VmRSS) of a process in KiB, or null. */
export function rssKiB(pid) {
  if (!pid) return null;
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? null : Number(m[1]);
  } catch {
    return null;
  }
}

/**
 * Polls a process's RSS every `intervalMs` until it has held still for `stableMs`: every
 * reading in that window within `toleranceKiB` or `tolerance` of the latest, whichever is
 * larger; at most `timeoutMs`. A process's memory right after a burst is not its steady state
 * (a garbage collection may still hand pages back), so two agreeing readings are not enough.
 * Resolves { kib, settled, readings, ms } (kib: the last reading), or null without /proc.
 */
export async function settledRss(
  pid,
  { intervalMs = 250, stableMs = 3000, timeoutMs = 20000, toleranceKiB = 64, tolerance = 0.002, signal } = {},
) {
  const first = rssKiB(pid);
  if (first === null) return null;
  const window = [{ kib: first, at: performance.now() }];
  const t0 = window[0].at;
  let readings = 1;
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
    if (signal?.aborted) break;
    const kib = rssKiB(pid);
    if (kib === null) return null;
    readings++;
    const now = performance.now();
    window.push({ kib, at: now });
    const limit = Math.max(toleranceKiB, kib * tolerance);
    // Keep only the readings that agree with this one, back to the first that does not.
    let from = window.length - 1;
    while (from > 0 && Math.abs(window[from - 1].kib - kib) <= limit) from--;
    window.splice(0, from);
    if (now - window[0].at >= stableMs) return { kib, settled: true, readings, ms: Math.round(now - t0) };
    if (now - t0 > timeoutMs) break;
  }
  const last = window[window.length - 1];
  return { kib: last.kib, settled: false, readings, ms: Math.round(performance.now() - t0) };
}

/** Open-file limits { soft, hard } of a process ('self' for this one) from /proc, or null. */
export function fdLimits(pid = 'self') {
  try {
    const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
    if (m === null) return null;
    const n = (x) => (x === 'unlimited' ? Number.POSITIVE_INFINITY : Number(x));
    return { soft: n(m[1]), hard: n(m[2]) };
  } catch {
    return null;
  }
}

/** Local port range for outgoing connections { low, high }, or Linux's default. */
export function ephemeralPorts() {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return { low, high };
  } catch {
    return { low: 32768, high: 60999 };
  }
}
