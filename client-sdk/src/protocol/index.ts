// The wire contract of durable-pubsub v1, shared by the SDK and the server. No dependencies.
export * from './codes';
export * from './decode';
export * from './glob';
export * from './subscription';
export type * from './types';
