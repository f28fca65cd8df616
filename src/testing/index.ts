export { type ConformanceOptions, conformance } from './conformance.ts';
export { TcpProxy } from './proxy.ts';
