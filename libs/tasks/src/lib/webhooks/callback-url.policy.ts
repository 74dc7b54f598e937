import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/** The longest callback url accepted (the column's CHECK says the same). */
export const MAX_CALLBACK_URL_LENGTH = 2048;

/** An address a delivery may connect to, checked once and then used for the connection itself (no DNS rebinding). */
export interface CheckedAddress {
  address: string;
  family: 4 | 6;
}

/** Why a url is refused: a message for the submitter, starting with what is wrong. */
export class CallbackUrlRefused extends Error {}

/**
 * Only public unicast addresses: loopback, private, link-local (169.254.169.254, the cloud metadata
 * service), unique-local (fd00:ec2::254), carrier-grade NAT (100.100.100.200), unspecified, multicast,
 * broadcast, reserved, and the IPv6 ranges that embed IPv4 (6to4, Teredo, NAT64) are all refused.
 * IPv4-mapped IPv6 (::ffff:10.0.0.1) is unwrapped first.
 */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  return ipaddr.process(address).range() === 'unicast';
}

/** The url's syntax: http(s), no credentials, a host, at most MAX_CALLBACK_URL_LENGTH characters. */
export function parseCallbackUrl(raw: string): URL {
  if (raw.length > MAX_CALLBACK_URL_LENGTH)
    throw new CallbackUrlRefused(`must be at most ${MAX_CALLBACK_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CallbackUrlRefused('must be an absolute http or https URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new CallbackUrlRefused('must be an http or https URL');
  if (url.username || url.password) throw new CallbackUrlRefused('must not carry credentials (user:password@)');
  if (!url.hostname) throw new CallbackUrlRefused('must name a host');
  return url;
}

/** The url's host without IPv6 brackets. */
function bareHost(url: URL): string {
  return url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
}

/**
 * Resolves the url's host and returns the address to connect to; refuses the url when ANY resolved
 * address is not public (a name with one public and one private address could be steered to the
 * private one), unless `allowPrivate`.
 */
export async function resolveCallbackTarget(url: URL, allowPrivate: boolean): Promise<CheckedAddress> {
  const host = bareHost(url);
  let addresses: { address: string; family: number }[];
  if (isIP(host)) addresses = [{ address: host, family: isIP(host) }];
  else {
    try {
      addresses = await lookup(host, { all: true, verbatim: true });
    } catch (err) {
      throw new CallbackUrlRefused(`host ${host} does not resolve (${(err as NodeJS.ErrnoException).code ?? err})`);
    }
  }
  if (addresses.length === 0) throw new CallbackUrlRefused(`host ${host} does not resolve`);
  if (!allowPrivate) {
    const refused = addresses.find((a) => !isPublicAddress(a.address));
    if (refused)
      throw new CallbackUrlRefused(
        `host ${host} is (or resolves to) ${refused.address}, a loopback, private, link-local or other non-public address`,
      );
  }
  return { address: addresses[0].address, family: addresses[0].family === 6 ? 6 : 4 };
}

/** Checks a submitted url; throws CallbackUrlRefused with the reason. */
export async function checkCallbackUrl(raw: string, allowPrivate: boolean): Promise<void> {
  await resolveCallbackTarget(parseCallbackUrl(raw), allowPrivate);
}
