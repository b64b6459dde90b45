// Envoy's fault filter (envoy.filters.http.fault), per route: Istio's fault injection. It runs
// after the route is chosen and before anything is sent upstream; a delay does not count toward
// the route timeout (the router's clock starts after it), and an aborted request is never sent.
import type { Fault } from '../xds-client/convert-route.ts';
import type { Downstream } from './types.ts';

export type FaultOutcome = { kind: 'none' } | { kind: 'abort'; httpStatus?: number; grpcStatus?: number } | { kind: 'delay'; ms: number; thenAbort?: { httpStatus?: number; grpcStatus?: number } };

/** PURE given the two random numbers in [0, 1): what the fault config does to one request. */
export function faultOutcome(f: Fault, randDelay: number, randAbort: number): FaultOutcome {
  const abort = f.abort && randAbort < f.abort.fraction ? { httpStatus: f.abort.httpStatus, grpcStatus: f.abort.grpcStatus } : undefined;
  if (f.delay && f.delay.ms > 0 && randDelay < f.delay.fraction) return { kind: 'delay', ms: f.delay.ms, thenAbort: abort };
  return abort ? { kind: 'abort', ...abort } : { kind: 'none' };
}

/**
 * Applies a fault to a request: `abort` answers it, `proceed` forwards it. Returns at once;
 * after a delay the request goes on unless the client has gone.
 */
export function injectFault(ds: Downstream, outcome: FaultOutcome, proceed: () => void, abort: (a: { httpStatus?: number; grpcStatus?: number }) => void): void {
  if (outcome.kind === 'abort') return abort(outcome);
  if (outcome.kind === 'none') return proceed();
  let gone = false;
  const timer = setTimeout(() => {
    if (gone) return;
    if (outcome.thenAbort) abort(outcome.thenAbort);
    else proceed();
  }, outcome.ms);
  ds.onAbort(() => {
    gone = true;
    clearTimeout(timer);
  });
}
