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

interface ProcessStat {
  pid: number;
  ppid: number;
  pgrp: number;
  command: string;
  ms: number;
}

function processTable(): ProcessStat[] {
  const table: ProcessStat[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // exited while we looked
    }
    // Fields after the parenthesised command: state(3) ppid(4) pgrp(5) … utime(14) stime(15).
    const close = stat.lastIndexOf(')');
    const fields = stat.slice(close + 2).split(' ');
    table.push({
      pid: Number(name),
      ppid: Number(fields[1]),
      pgrp: Number(fields[2]),
      command: stat.slice(stat.indexOf('(') + 1, close),
      ms: ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks(),
    });
  }
  return table;
}

/**
 * User + system CPU time, in ms, of the live processes in process group `pgid` and of their
 * descendants that left it (PostgreSQL's backends each start a session of their own), by command
 * name (`postgres`, `redis-server`, `node`, `workerd`). Time of processes that have already exited
 * is not included. Empty without `/proc`.
 */
export function groupCpuMsByCommand(pgid: number): Map<string, number> {
  const byCommand = new Map<string, number>();
  if (!canMeasureCpu) return byCommand;
  const table = processTable();
  const members = new Set(table.filter((p) => p.pgrp === pgid).map((p) => p.pid));
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of table) {
      if (!members.has(p.pid) && members.has(p.ppid)) {
        members.add(p.pid);
        grew = true;
      }
    }
  }
  for (const p of table) if (members.has(p.pid)) byCommand.set(p.command, (byCommand.get(p.command) ?? 0) + p.ms);
  return byCommand;
}

/**
 * User + system CPU time, in ms, of the live processes in process group `pgid` (all their threads)
 * and their descendants (see {@link groupCpuMsByCommand}). NaN without `/proc`.
 */
export function groupCpuMs(pgid: number): number {
  if (!canMeasureCpu) return Number.NaN;
  let total = 0;
  for (const ms of groupCpuMsByCommand(pgid).values()) total += ms;
  return total;
}
