// PURE: which protocol a service port carries, by Istio's rules ("Protocol Selection",
// istio.io/latest/docs/ops/configuration/traffic-management/protocol-selection/, and
// ConvertProtocol in istio/pkg/config/kube):
//   1. appProtocol, if set, is what is parsed (an unknown appProtocol does NOT fall back to the name);
//   2. else the port name: "<protocol>" or "<protocol>-<suffix>" (grpc-web checked before the split);
//   3. else unspecified: the sidecar detects HTTP and treats anything else as opaque TCP.
// Names are case-insensitive.

import { parseProtocol as parseDeclared } from '../../api/rules.ts';

/** Istio's protocol names (protocol.Instance). */
export type Protocol = 'HTTP' | 'HTTP2' | 'HTTPS' | 'HTTP_PROXY' | 'GRPC' | 'GRPC-Web' | 'TCP' | 'TLS' | 'Mongo' | 'Redis' | 'MySQL' | 'UDP' | 'Unsupported';

/**
 * How the sidecar handles a port: an HttpConnectionManager speaking HTTP/1.1 or HTTP/2 upstream,
 * an opaque tcp_proxy, protocol detection, or nothing (UDP, which Weft does not proxy).
 */
export type PortHandling = 'http' | 'http2' | 'tcp' | 'detect' | 'udp';

/** Kubernetes' standard appProtocol names (KEP-3726), which Istio maps before parsing. */
const K8S_APP_PROTOCOLS: ReadonlyMap<string, Protocol> = new Map([
  ['kubernetes.io/h2c', 'HTTP2'],
  ['kubernetes.io/ws', 'HTTP'],
  ['kubernetes.io/wss', 'HTTPS'],
]);

/** Istio's protocol.Parse, on the validator's own table (api/rules.ts): a name it does not know is Unsupported. */
export function parseProtocol(s: string): Protocol {
  return (parseDeclared(s) as Protocol | undefined) ?? 'Unsupported';
}

export function selectProtocol(port: { name?: string; appProtocol?: string }): Protocol {
  let name = port.appProtocol ?? port.name ?? '';
  const k8s = port.appProtocol !== undefined ? K8S_APP_PROTOCOLS.get(port.appProtocol) : undefined;
  if (k8s) return k8s;
  if (name.toLowerCase().startsWith('grpc-web')) return 'GRPC-Web';
  const i = name.indexOf('-');
  if (i >= 0) name = name.slice(0, i);
  return parseProtocol(name);
}

export function handlingOf(p: Protocol): PortHandling {
  switch (p) {
    case 'HTTP':
    case 'HTTP_PROXY':
      return 'http';
    // Istio's IsHTTP2(): these are sent upstream as HTTP/2.
    case 'HTTP2':
    case 'GRPC':
    case 'GRPC-Web':
      return 'http2';
    case 'UDP':
      return 'udp';
    case 'Unsupported':
      return 'detect';
    default:
      // HTTPS, TLS, TCP, Mongo, Redis, MySQL: bytes the sidecar does not look into.
      return 'tcp';
  }
}

/** selectProtocol, then handlingOf. */
export function portHandling(port: { name?: string; appProtocol?: string }): PortHandling {
  return handlingOf(selectProtocol(port));
}
