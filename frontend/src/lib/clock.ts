/** One shared clock for relative times and running durations (no network involved).
 *
 * The time is Date.now() rounded down to the tick, so reading it twice in a render gives the
 * same value; a timer per tick size runs while some component listens and only notifies. */
import { useSyncExternalStore } from "react";

interface Channel {
  listeners: Set<() => void>;
  timer: ReturnType<typeof setInterval> | null;
  subscribe: (l: () => void) => () => void;
  snapshot: () => number;
}

const channels = new Map<number, Channel>();
const noSubscribe = () => () => undefined;

function channel(ms: number): Channel {
  let c = channels.get(ms);
  if (c) return c;
  const ch: Channel = {
    listeners: new Set(),
    timer: null,
    // stable identities: React resubscribes when subscribe changes
    subscribe(l) {
      ch.listeners.add(l);
      ch.timer ??= setInterval(() => {
        for (const f of ch.listeners) f();
      }, ms);
      return () => {
        ch.listeners.delete(l);
        if (!ch.listeners.size && ch.timer) {
          clearInterval(ch.timer);
          ch.timer = null;
        }
      };
    },
    snapshot: () => Math.floor(Date.now() / ms) * ms,
  };
  channels.set(ms, ch);
  c = ch;
  return c;
}

/** The current time (to ``ms``), updated every ``ms`` while ``active``. */
export function useNow(ms = 30_000, active = true): number {
  const c = channel(ms);
  return useSyncExternalStore(active ? c.subscribe : noSubscribe, c.snapshot);
}
