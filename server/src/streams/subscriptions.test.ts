// Subscription patterns (§6.2 globs) and the webhook URL guard, on their own.
import { describe, expect, it } from 'vitest';
import { globMatcher } from './links';
import { webhookUrlAllowed } from './webhooks';

describe('globMatcher', () => {
  const paths = ['events', 'events/a', 'events/a/b', 'events/a/b/c', 'other/a', 'events.x/a', 'eventsa'];
  it.each([
    ['events/*', ['events/a']],
    ['events/**', ['events', 'events/a', 'events/a/b', 'events/a/b/c']],
    ['events/**/c', ['events/a/b/c']],
    ['**/a', ['events/a', 'other/a', 'events.x/a']],
    ['*/a', ['events/a', 'other/a', 'events.x/a']],
    ['events/*/b', ['events/a/b']],
    ['ev*', ['events', 'eventsa']],
    ['events.x/*', ['events.x/a']],
    ['**', paths],
  ])('%s matches exactly %j', (pattern, expected) => {
    const m = globMatcher(pattern);
    expect(paths.filter(m)).toEqual(expected);
  });
});

describe('webhookUrlAllowed', () => {
  it.each([
    ['https://hooks.example.com/x', true],
    ['http://localhost:8080/hook', true],
    ['http://127.0.0.1:9/hook', true],
    ['https://127.0.0.5/hook', true],
    ['http://hooks.example.com/x', false],
    ['http://10.0.0.1/hook', false],
    ['https://10.1.2.3/hook', false],
    ['https://172.16.0.1/hook', false],
    ['https://192.168.1.1/hook', false],
    ['https://169.254.169.254/latest', false],
    ['https://[::1]/hook', false],
    ['https://[fd00::1]/hook', false],
    ['https://printer.local/hook', false],
    ['ftp://example.com/x', false],
    ['not a url', false],
  ])('%s: %s', (url, ok) => {
    expect(webhookUrlAllowed(url)).toBe(ok);
  });
});
