// Public entry of the durable-pubsub client SDK (the client itself lands with the SDK issue).
export * from './protocol/index';
