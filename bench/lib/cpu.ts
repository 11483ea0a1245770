/**
 * CPU time used by a process group (Linux `/proc`). On a shared machine, server CPU per request is a
 * steadier figure than requests per second: it does not drop because someone else took the cores.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** Whether `/proc` is there to read (Linux). Without it {@link groupCpuMs} returns NaN. */
export const canMeasureCpu = fs.existsSync('/proc/self/stat');

/**
 * User + system CPU time, in ms, of the live processes in process group `pgid` (all their threads).
 * Time of processes that have already exited is not included. NaN without `/proc`.
 */
export function groupCpuMs(pgid: number): number {
  if (!canMeasureCpu) return Number.NaN;
  let ticks = 0;
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // exited while we looked
    }
    // Fields after the parenthesised command: state(3) ppid(4) pgrp(5) … utime(14) stime(15).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) !== pgid) continue;
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return (ticks * 1000) / clockTicks();
}
