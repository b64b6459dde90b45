// A telemetry subscriber runs inside the request path's publish (node:diagnostics_channel): if it
// threw, the error would be rethrown as an uncaught exception and end the sidecar. Each subscriber
// runs guarded: a failure is logged (the first few times) and the event is skipped.

let reported = 0;
const MAX_REPORTS = 10;

/** `fn`, guarded: made once per subscriber (no closure per event). */
export function guarded<T>(fn: (message: T) => void, log: (msg: string) => void, what: string): (message: T) => void {
  return (m: T) => {
    try {
      fn(m);
    } catch (e) {
      if (reported++ < MAX_REPORTS) log(`BUG: ${what} failed on an event (skipped): ${(e as Error)?.stack ?? e}`);
    }
  };
}
