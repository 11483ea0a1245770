// Runs the suite as if today were another day (`TEST_TODAY=2027-06-01 npx vitest run …`), to show
// that no test depends on the calendar. workerd reads the host clock past libfaketime, so the shift
// is made here, inside the isolate the tests and the rooms share: `Date` is replaced by one that runs
// `clockOffsetMs` ahead, and the rooms' alarms are set and read back through the same offset (workerd
// fires them by the real clock). Postgres and Redis run under libfaketime with the same offset
// (test/global-setup.ts), so `now()` in SQL agrees with `Date.now()` here. With no TEST_TODAY the
// offset is 0 and nothing is touched.
import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { beforeAll, inject } from 'vitest';

const offset = inject('clockOffsetMs');

if (offset) {
  const RealDate = Date;
  class ShiftedDate extends RealDate {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(RealDate.now() + offset);
      else super(...(args as [string | number | Date]));
    }
    static override now(): number {
      return RealDate.now() + offset;
    }
  }
  globalThis.Date = ShiftedDate as DateConstructor;

  beforeAll(async () => {
    await runInDurableObject(env.CONCERT_ROOM.getByName(`clock-shift-${crypto.randomUUID()}`), (_room, state) => {
      const storage = Object.getPrototypeOf(state.storage) as DurableObjectStorage & { __shifted?: true };
      if (storage.__shifted) return;
      storage.__shifted = true;
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
  });
}
