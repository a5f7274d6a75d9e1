/** A ZeroMQ TCP endpoint; IPv6 addresses go in brackets. (Its own module: the logger needs it without the config loader.) */
export function tcpEndpoint(hostName: string, portNumber: number): string {
  return `tcp://${hostName.includes(":") ? `[${hostName}]` : hostName}:${portNumber}`;
}
