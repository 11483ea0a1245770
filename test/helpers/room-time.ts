// The clock the tests and the rooms share. Tests and Durable Objects run in one workerd isolate, so
// replacing `Date` here moves the rooms' clock too: a test that needs a session, a window or the
// opening to have passed moves time forward (`advanceRoomClock`) instead of sleeping and hoping the
// box keeps up. The rooms' alarms are set and read through the same offset, since workerd fires them
// by the real clock. Postgres keeps its own clock: to make holds due there, use `dueInPostgres`
// (test/helpers/expiry.ts). Time only ever moves forward, as a real one does.
import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';

const RealDate = Date;
let offset = 0;
let installed: Promise<void> | undefined;

class ShiftedDate extends RealDate {
  constructor(...args: unknown[]) {
    if (args.length === 0) super(RealDate.now() + offset);
    else super(...(args as [string | number | Date]));
  }
  static override now(): number {
    return RealDate.now() + offset;
  }
  // Dates made before the swap (or by the real constructor) are still dates.
  static override [Symbol.hasInstance](value: unknown): boolean {
    return value instanceof RealDate;
  }
}

/** Routes every room's alarm through the offset; idempotent. */
function patchAlarms(): Promise<void> {
  installed ??= (async () => {
    await runInDurableObject(env.CONCERT_ROOM.getByName(`room-time-${crypto.randomUUID()}`), (_room, state) => {
      const storage = Object.getPrototypeOf(state.storage) as DurableObjectStorage;
      // Taken off the prototype and called below with each instance as `this`.
      // eslint-disable-next-line @typescript-eslint/unbound-method
      const { setAlarm, getAlarm } = storage;
      storage.setAlarm = function (this: DurableObjectStorage, time: number | Date, options?: DurableObjectSetAlarmOptions) {
        return setAlarm.call(this, new RealDate(+time - offset), options);
      };
      storage.getAlarm = async function (this: DurableObjectStorage, options?: DurableObjectGetAlarmOptions) {
        const time = await getAlarm.call(this, options);
        return time === null ? null : time + offset;
      };
    });
  })();
  return installed;
}

/**
 * Moves the clock of this test file and of every room `ms` forward. Alarms already armed keep their
 * real time, so they fire late by the moved amount: drive them (`runDurableObjectAlarm`) or delete
 * them first when a test needs to say when they run.
 */
export function advanceRoomClock(ms: number): Promise<void> {
  if (!(ms >= 0)) throw new Error(`time only moves forward (got ${ms} ms)`);
  // Synchronously, so that code run right after the call (a module's top level too) sees it.
  globalThis.Date = ShiftedDate as DateConstructor;
  offset += ms;
  return patchAlarms();
}
