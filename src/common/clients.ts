/**
 * API clients that keep the bytes which arrive with a 101's head (the Go docker client reads
 * them from its buffered reader, the berth CLI from the head's leftover): berthd need not hold
 * a hijacked stream's first output back for them. Others, docker-py and dockerode among them,
 * read the head buffered and then the raw socket, and lose such bytes.
 */
export const BERTH_CLI_USER_AGENT = 'berth-cli';

export function keepsBytesAfterHead(userAgent: string | undefined): boolean {
  return !!userAgent && (userAgent.startsWith('Docker-Client/') || userAgent === BERTH_CLI_USER_AGENT);
}
