import type { Command } from 'commander';
export function registerFeed(_program: Command): void {}
