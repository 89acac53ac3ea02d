#!/usr/bin/env node
// The `durable-pubsub` command in the workspace: the TypeScript CLI through tsx's loader, no build step (the published
// package's bin is the built dist/cli.js instead: publishConfig.bin in package.json).
import { register } from 'tsx/esm/api';

register();
await import('../src/cli.ts');
