/** A free TCP port on loopback, for a daemon that must come back on the same one. */
export { freePort } from '../../src/net/free-port.ts';
