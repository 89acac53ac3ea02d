// The wire contract of durable-pubsub v1, shared by the SDK and the server. No dependencies.
export * from './codes';
export * from './decode';
export * from './decode-server';
export * from './encode';
export * from './glob';
export * from './ops';
export * from './subscription';
export type * from './types';
