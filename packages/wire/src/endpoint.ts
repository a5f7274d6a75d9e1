/** A ZeroMQ TCP endpoint; IPv6 addresses go in brackets. The bus's addressing, which publishers and services share. */
export function tcpEndpoint(hostName: string, portNumber: number): string {
  return `tcp://${hostName.includes(":") ? `[${hostName}]` : hostName}:${portNumber}`;
}
