// The HTTP/1.1 paths' shared parts: how each is loaded (hey at the fixed rate and at maximum
// throughput, wrk paced), and haproxy's configuration, plain (run.ts) or with TLS between its two
// hops (mtls.ts).
import { hey, wrkPaced } from './load.ts';
import { CONNS, FIXED_S, MAX_CONNS, MAX_S, MAX_WARMUP_S, PACED_WARMUP_S, RATE, WARMUP_S, type Steps } from './measure.ts';

export interface Tools {
  haproxy: string;
  hey: string;
  wrk: string;
}

/** hey at the fixed rate and at max throughput, wrk paced at the fixed rate, against one URL. */
export function h1Steps(tools: Tools, name: string, url: string, host: string | undefined): Steps {
  return {
    warmup: () => hey(tools.hey, `${name} warm-up`, url, { duration: `${WARMUP_S}s`, conns: CONNS, rate: RATE, host }),
    fixed: () => hey(tools.hey, `${name} fixed rate`, url, { duration: `${FIXED_S}s`, conns: CONNS, rate: RATE, host }),
    paced: {
      warmup: () => wrkPaced(tools.wrk, `${name} paced warm-up`, url, { duration: `${PACED_WARMUP_S}s`, conns: CONNS, rate: RATE, host }),
      run: () => wrkPaced(tools.wrk, `${name} paced`, url, { duration: `${FIXED_S}s`, conns: CONNS, rate: RATE, host }),
    },
    maxWarmup: () => hey(tools.hey, `${name} max warm-up`, url, { duration: `${MAX_WARMUP_S}s`, conns: MAX_CONNS, host }),
    max: () => hey(tools.hey, `${name} max throughput`, url, { duration: `${MAX_S}s`, conns: MAX_CONNS, host }),
  };
}

/**
 * One haproxy hop, HTTP/1.1 with keep-alive to its backend. `tls`: the hop's TLS, as the two hops
 * of the mTLS comparison use it (bench/mtls.ts): `bind` terminates it (client certificates
 * required), `server` originates it; `perRequest` closes the backend connection after each
 * response, so that every request makes a new one (a handshake each, with TLS).
 */
export function haproxyConfig(listenPort: number, backendPort: number, tls: { bind?: string; server?: string; perRequest?: boolean } = {}): string {
  return `# written by bench/run.ts
global
    nbthread 1
    maxconn 4096
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
frontend in
    bind 127.0.0.1:${listenPort}${tls.bind ? ` ${tls.bind}` : ''}
    default_backend out
backend out${tls.perRequest ? '\n    option http-server-close\n    http-reuse never' : ''}
    server s1 127.0.0.1:${backendPort}${tls.server ? ` ${tls.server}` : ''}
`;
}

